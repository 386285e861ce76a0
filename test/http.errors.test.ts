import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Agent } from '@tu/agent';
import type { Relay } from '@tu/relay';
import { ERROR_CODES, StepError, toFailureReason, type ErrorCode } from '@tu/shared';
import { inject, startTestAgent } from './support/harness.js';
import { startTestRelay } from './support/relay.js';

type Ctx = { agent: Agent; relay: Relay };
const t = suite<Ctx>('http: one error catalogue and one error handler for the agent and the relay');

type Body = { error: { code: string; message: string } };

t.before(async (ctx) => {
  ctx.agent = await startTestAgent();
  ctx.relay = await startTestRelay();
});
t.after(async (ctx) => {
  await ctx.agent?.stop();
  await ctx.relay?.stop();
});

t('every catalogue code has an error status and a message', () => {
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    assert.ok(Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599, `${code}: ${spec.status}`);
    assert.ok(spec.message.length > 10, code);
  }
});

t('a refusal answers with its code’s status from the catalogue, on both servers', async (ctx) => {
  const cases: [string, Promise<{ statusCode: number; json: <T>() => T }>, ErrorCode][] = [
    ['agent: unknown analysis', inject(ctx.agent, { url: '/api/v1/analyses/abcdefgh1234' }), 'NOT_FOUND'],
    ['agent: bad analysis id', inject(ctx.agent, { url: '/api/v1/analyses/x' }), 'INVALID_REQUEST'],
    ['agent: no route', inject(ctx.agent, { url: '/api/v1/nothing' }), 'NOT_FOUND'],
    ['agent: photo without body', inject(ctx.agent, { method: 'POST', url: '/api/v1/images' }), 'IMAGE_EMPTY'],
    ['relay: no token', ctx.relay.app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ gateways { nodes { id } } }' } }), 'UNAUTHENTICATED'],
    ['relay: no route', ctx.relay.app.inject({ url: '/api/v1/nothing' }), 'NOT_FOUND'],
  ];
  for (const [what, pending, code] of cases) {
    const res = await pending;
    const body = res.json<Body>();
    assert.is(body.error.code, code, what);
    assert.is(res.statusCode, ERROR_CODES[code].status, what);
    assert.ok(body.error.message.length > 0, what);
  }
});

t('fastify’s own refusals on a JSON route carry the catalogue code of their status, never a photo message', async (ctx) => {
  const wrongType = await inject(ctx.agent, { method: 'PUT', url: '/api/v1/machine', payload: '<machine/>', headers: { 'content-type': 'application/xml' } });
  assert.is(wrongType.statusCode, 415);
  const tooLarge = await inject(ctx.agent, { method: 'PUT', url: '/api/v1/machine', payload: JSON.stringify({ name: 'x'.repeat(100_000) }), headers: { 'content-type': 'application/json' } });
  assert.is(tooLarge.statusCode, 413);
  const badJson = await inject(ctx.agent, { method: 'PUT', url: '/api/v1/machine', payload: '{', headers: { 'content-type': 'application/json' } });
  assert.is(badJson.statusCode, 400);
  const noType = await inject(ctx.agent, { method: 'POST', url: '/api/v1/analyses/abcdefgh1234/label', payload: 'label=crane' });
  assert.is(noType.statusCode, 415);
  // Before, all four said INVALID_REQUEST, whose status in the catalogue is 400: the code and the status disagreed.
  for (const [res, code] of [[wrongType, 'BODY_TYPE_UNSUPPORTED'], [tooLarge, 'PAYLOAD_TOO_LARGE'], [badJson, 'INVALID_REQUEST'], [noType, 'BODY_TYPE_UNSUPPORTED']] as const) {
    const body = res.json<Body>();
    assert.is(body.error.code, code, res.body);
    assert.is(res.statusCode, ERROR_CODES[code].status, res.body);
    assert.not.match(body.error.message, /not a photo|lower resolution/i);
  }
});

t('a multipart upload with more parts than the gateway reads is INVALID_REQUEST saying so, not "the photo is too large"', async (ctx) => {
  const b = 'tu-many-fields';
  const fields = Array.from({ length: 6 }, (_, i) => `--${b}\r\nContent-Disposition: form-data; name="note${i}"\r\n\r\nsite 7\r\n`).join('');
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]);
  const payload = Buffer.concat([Buffer.from(`${fields}--${b}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`), jpeg, Buffer.from(`\r\n--${b}--\r\n`)]);
  const res = await inject(ctx.agent, { method: 'POST', url: '/api/v1/images', payload, headers: { 'content-type': `multipart/form-data; boundary=${b}` } });
  const body = res.json<Body>();
  assert.is(body.error.code, 'INVALID_REQUEST', res.body);
  assert.is(res.statusCode, 400);
  assert.match(body.error.message, /fields/);
  assert.not.match(body.error.message, /too large|lower resolution/i);
});

t('a URL fastify cannot route (bad percent-encoding, an id longer than any) is refused in the catalogue shape, on both servers', async (ctx) => {
  const long = 'a'.repeat(150);
  const asked = [
    ...['/api/v1/analyses/%E0%A4%A', `/api/v1/analyses/${long}`, `/api/v1/analyses/${long}/label`].map((url) => ({ url, answer: inject(ctx.agent, { url }) })),
    ...['/assets/%E0%A4%A', '/%E0%A4%A'].map((url) => ({ url: `relay ${url}`, answer: ctx.relay.app.inject({ url }) })),
  ];
  for (const { url, answer } of asked) {
    const res = await answer;
    const body = res.json<Body>();
    assert.is(body.error?.code, 'INVALID_REQUEST', `${url}: ${res.body.slice(0, 200)}`);
    assert.is(res.statusCode, 400, url);
    assert.not.match(body.error.message, long, 'the address is not echoed back whole');
  }
});

t('a step failure carries a catalogue code; a foreign code becomes INTERNAL_ERROR', () => {
  assert.equal(toFailureReason(new StepError('IMAGE_DECODE_FAILED', 'truncated JPEG', false)), { code: 'IMAGE_DECODE_FAILED', message: 'truncated JPEG', retryable: false });
  const errno = Object.assign(new Error('open failed'), { code: 'EACCES' });
  assert.is(toFailureReason(errno).code, 'INTERNAL_ERROR');
  const foreign = Object.assign(new Error('made up'), { code: 'NOT_IN_THE_CATALOGUE' });
  assert.is(toFailureReason(foreign).code, 'INTERNAL_ERROR');
  const known = Object.assign(new Error('model gone'), { code: 'MODEL_NOT_FOUND' });
  assert.is(toFailureReason(known).code, 'MODEL_NOT_FOUND');
});

t.run();
