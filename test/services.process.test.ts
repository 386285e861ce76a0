import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { agentVersion } from '@tu/agent/internal/release/layout';
import { inject, observer, until } from './support/harness.js';
import { MODEL_DIR, REPO_ROOT, photoBytes, startRealAgent } from './support/real.js';

test('vision runs as its own process (--service vision, TCP) and the orchestrator uses it', async () => {
  const agent = await startRealAgent({ 'services.vision': false });
  const obs = await observer(agent, 'proc');
  let child: ChildProcess | undefined;
  try {
    const configFile = path.join(agent.config.dataDir, 'service.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        gatewayId: agent.config.gatewayId,
        dataDir: agent.config.dataDir,
        broker: { host: '127.0.0.1', port: agent.broker.address!.port },
        model: { dir: MODEL_DIR },
        log: { level: 'info' },
      }),
    );
    const proc = spawn(process.execPath, [path.join(REPO_ROOT, 'agent/dist/main.js'), '--service', 'vision', '--config', configFile], {
      cwd: REPO_ROOT,
      env: { ...process.env, TU_BUS_SECRET: agent.busIdentity.secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const visionInstances = () => agent.orchestrator.instances().filter((i) => i.handles.includes('analysis.recognition.request'));
    await until(() => (visionInstances().length === 1 && out.includes('"service started"')) || proc.exitCode !== null, 20_000, 'the vision process to announce itself');
    assert.is(proc.exitCode, null, out);
    assert.match(out, /"service started"/);
    const instanceId = visionInstances()[0]!.instanceId;
    assert.ok(instanceId.includes(`.${proc.pid}.`), `instance ${instanceId} is the child (pid ${proc.pid})`);

    const res = await inject(agent, { method: 'POST', url: '/api/v1/images', payload: photoBytes('forklift/imagenet_n03384352_forklift.jpg'), headers: { 'content-type': 'image/jpeg' } });
    assert.is(res.statusCode, 202);
    const id = res.json<{ analysisId: string }>().analysisId;
    await until(() => obs.events.some((e) => e.subject === id && e.type === 'analysis.completed'), 20_000, 'completion');
    const view = agent.orchestrator.status(id)!;
    assert.is(view.steps.find((s) => s.step === 'recognition')!.instance, instanceId);
    const health = (await inject(agent, { method: 'GET', url: '/api/v1/health' })).json<{ model: { state: string }; services: Record<string, { inProcess: boolean; up: boolean; instances: { version: string }[] }> }>();
    assert.is(health.model.state, 'out-of-process');
    assert.equal(health.services['svc-ai-vision-adapter'], { ...health.services['svc-ai-vision-adapter']!, inProcess: false, up: true });
    // Which release the service process runs, as its presence says (it was always '0.1.0').
    assert.equal(
      health.services['svc-ai-vision-adapter']!.instances.map((i) => i.version),
      [agentVersion()],
    );

    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    await until(() => visionInstances().length === 0, 5000, 'presence cleared on a clean stop');
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await obs.bus.close();
    await agent.stop();
  }
});

test.run();
