/**
 * POST /api/v1/machine/references while the vision model is not loaded: the refusal names why
 * (the model's own code and message, as health does), not "enable services.vision" to a gateway
 * where it is enabled.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inject, startTestAgent, testConfig } from './support/harness.js';
import { photoBytes } from './support/data.js';

test('a reference photo sent while the model does not load: 503 with the model\'s code and what to do', async () => {
  const agent = await startTestAgent({ config: testConfig({ 'services.vision': true, 'model.dir': '/nonexistent/tu-model' }) });
  try {
    const res = await inject(agent, { method: 'POST', url: '/api/v1/machine/references', payload: photoBytes('forklift/imagenet_n03384352_forklift.jpg'), headers: { 'content-type': 'image/jpeg' } });
    const body = res.json<{ error: { code: string; message: string } }>();
    assert.is(res.statusCode, 503, res.body);
    assert.is(body.error.code, 'MODEL_NOT_FOUND', res.body);
    assert.not.match(body.error.message, /enable services\.vision/);
    assert.match(body.error.message, /model/i);
    assert.equal(agent.device.references(), [], 'nothing registered');
  } finally {
    await agent.stop();
  }
});

test.run();
