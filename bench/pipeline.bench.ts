/**
 * Pipeline benchmark on the real photos and the real model, agent in this process:
 * per-photo latency breakdown (decode, inference, comparison, metadata, end-to-end from
 * POST to analysis.completed), agent RSS after loading, and the main thread's
 * event-loop delay p99 during a burst of analyses.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { loadAgentConfig } from '@tu/firmware-config';
import { silentLogger, type StepName } from '@tu/shared';
import { startAgent } from '@tu/agent';
import { createVisionEngine } from '@tu/agent/internal/services/vision/engine';
import { inject } from '../test/support/harness.js';
import { recordAim } from './aims.js';
import { watchAnalyses } from './watch.js';
import { IMAGES_DIR, listPhotos } from './photos.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = process.env['MODEL_DIR'] ?? path.resolve(ROOT, '../shared/models/mobilenet_v2_100_224_quant');

const q = (xs: number[], p: number): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
};
const f = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');

const waitFor = async (pred: () => boolean, ms: number): Promise<void> => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('bench: timed out waiting for analyses');
    await new Promise((r) => setTimeout(r, 1));
  }
};

/**
 * The longest path of stage compute through the plan: each step's compute time after the
 * longest of the steps it needs (recognition + comparison for the default plan, since metadata
 * runs beside them). undefined when a step's time is missing.
 */
function longestComputePath(plan: readonly { step: StepName; needs: readonly StepName[] }[], times: Map<string, number> | undefined): number | undefined {
  if (!times) return undefined;
  const finish = new Map<StepName, number>();
  for (const p of plan) {
    const own = times.get(p.step);
    if (own === undefined) return undefined;
    finish.set(p.step, own + Math.max(0, ...p.needs.map((n) => finish.get(n) ?? 0)));
  }
  return Math.max(...finish.values());
}

/** Backbones compared head to head: the default (ONNX Runtime) and the first one (TF.js wasm). */
const ENGINE_MODELS = [
  path.resolve(ROOT, '../shared/models/mobilenet_v2_100_224_quant'),
  path.resolve(ROOT, '../shared/models/mobilenet_v1_025_224_tfhub'),
].filter((d) => fs.existsSync(d));

/**
 * Inference per engine on the real photos, in this thread, both engines loaded at once and
 * run photo by photo in alternating order, so both see the same machine load. Runs after
 * the agent has stopped so tfjs in this thread does not inflate the agent's RSS figures.
 */
async function engineComparison(photos: { file: string }[]): Promise<void> {
  const engines = [];
  for (const dir of ENGINE_MODELS) engines.push(await createVisionEngine({ modelDir: dir }));
  try {
    const inf = engines.map(() => [] as number[]);
    const dec = engines.map(() => [] as number[]);
    for (const e of engines) await e.embed(photos[0]!.file); // warm-up
    for (const [i, p] of photos.entries()) {
      const order = i % 2 ? [...engines.keys()].reverse() : [...engines.keys()];
      for (const k of order) {
        const r = await engines[k]!.embed(p.file);
        inf[k]!.push(r.inferenceMs);
        dec[k]!.push(r.decodeMs);
      }
    }
    console.log(`inference per engine, ${photos.length} real photos, same run (median / p99 ms; decode = sharp to the model's input layout):`);
    console.log('| model | engine | runtime | embedding | inference p50 | inference p99 | decode p50 |');
    console.log('|---|---|---|---|---|---|---|');
    engines.forEach((e, k) => {
      const m = e.info().model;
      console.log(`| ${m.id} | ${m.kind} | ${m.backend} | ${m.embeddingDim}-d | ${f(q(inf[k]!, 0.5))} | ${f(q(inf[k]!, 0.99))} | ${f(q(dec[k]!, 0.5))} |`);
    });
  } finally {
    for (const e of engines) e.dispose();
  }
}

export default async function pipelineBench(): Promise<void> {
  if (!fs.existsSync(MODEL_DIR) || !fs.existsSync(IMAGES_DIR)) {
    console.log(`skipped: model (${MODEL_DIR}) or photos (${IMAGES_DIR}) not found`);
    return;
  }
  // BENCH_ENGINES=only: just the engine table; BENCH_ENGINES=0: just the agent pipeline.
  if (process.env['BENCH_ENGINES'] === 'only') return engineComparison(listPhotos());

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tu-bench-pipeline-'));
  const config = loadAgentConfig({
    env: {},
    overrides: { gatewayId: 'gw-bench', dataDir, 'broker.port': 0, 'http.port': 0, 'http.host': '127.0.0.1', 'bus.secret': 'bench-secret-bench-secret-bench-secret-01', 'model.dir': MODEL_DIR, 'log.level': 'silent' },
  });
  const rss0 = process.memoryUsage.rss();
  const agent = await startAgent(config, { logger: silentLogger() });
  const { bus, ended, compute } = await watchAnalyses(agent);
  const photos = listPhotos();
  const post = async (p: { file: string; type: string }): Promise<{ id: string; t0: number }> => {
    const payload = fs.readFileSync(p.file);
    const t0 = performance.now();
    const res = await inject(agent, { method: 'POST', url: '/api/v1/images', payload, headers: { 'content-type': p.type } });
    if (res.statusCode !== 202) throw new Error(`bench: ${p.file} → ${res.statusCode} ${res.body}`);
    return { id: res.json<{ analysisId: string }>().analysisId, t0 };
  };
  try {
    // warm-up
    const w = await post(photos[0]!);
    await waitFor(() => ended.has(w.id), 30_000);
    const rssLoaded = process.memoryUsage.rss();
    const mem: string[] = [];
    const MB = 2 ** 20;
    const snapshot = async (label: string, analyses: number): Promise<void> => {
      const m = process.memoryUsage();
      const ws = await agent.recognizer()?.stats().catch(() => undefined);
      const c = sharp.cache();
      mem.push(
        `| ${label} | ${analyses} | ${(m.rss / MB).toFixed(0)} | ${(m.heapUsed / MB).toFixed(0)} | ${(m.external / MB).toFixed(0)} | ${ws ? `${ws.heapUsedMB.toFixed(0)} / ${ws.externalMB.toFixed(0)}` : 'n/a'} | ${ws?.numTensors != null ? `${ws.numTensors} (${ws.tensorMB?.toFixed(1) ?? '?'} MB)` : 'n/a'} | ${ws?.wasmHeapMB?.toFixed(0) ?? 'n/a'} | ${c.memory.current} MB, ${c.files.current} files, ${c.items.current} ops |`,
      );
    };
    await snapshot('after loading (1 warm-up)', 1);

    // sequential: one photo at a time, latency breakdown
    const m = { decode: [] as number[], inference: [] as number[], recognition: [] as number[], comparison: [] as number[], metadata: [] as number[], intake: [] as number[], e2e: [] as number[], path: [] as number[] };
    let failed = 0;
    for (const p of photos) {
      const { id, t0 } = await post(p);
      m.intake.push(performance.now() - t0);
      await waitFor(() => ended.has(id), 30_000);
      const { event, at } = ended.get(id)!;
      m.e2e.push(at - t0);
      if (event.type !== 'analysis.completed') {
        failed++;
        continue;
      }
      const r = agent.orchestrator.status(id)!.results.recognition!;
      m.decode.push(r.timings.decodeMs);
      m.inference.push(r.timings.inferenceMs + r.timings.headMs);
      for (const s of event.data.steps) if (s.durationMs !== undefined && s.step !== 'nameplate') m[s.step].push(s.durationMs);
      const path = longestComputePath(agent.config.orchestrator.plan, compute.get(id));
      if (path !== undefined) m.path.push(path);
    }
    const rssAfter = process.memoryUsage.rss();
    await snapshot('after sequential pass', 1 + photos.length);

    // burst: every photo at once; event-loop delay of this (the agent's main) thread
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    const tb = performance.now();
    const burst = await Promise.all(photos.map((p) => post(p)));
    await waitFor(() => burst.every((b) => ended.has(b.id)), 120_000);
    const burstMs = performance.now() - tb;
    h.disable();
    await snapshot('after burst', 1 + 2 * photos.length);
    // steady state: two more sequential passes (~300, ~400 analyses); RSS must level off
    for (let pass = 0; pass < 2; pass++) {
      for (const p of photos) {
        const { id } = await post(p);
        await waitFor(() => ended.has(id), 30_000);
      }
      await snapshot(`after pass ${pass + 3}`, 1 + (3 + pass) * photos.length);
    }

    console.log(`${photos.length} real photos (${IMAGES_DIR}), model ${agent.recognizer()?.info().model.id} on ${agent.recognizer()?.info().model.backend}, head: ${agent.recognizer()?.info().model.head ? 'yes' : 'none'}; ${failed} failed`);
    const rows: [string, number[]][] = [
      ['decode + resize (vision worker)', m.decode],
      ['inference + head (vision worker)', m.inference],
      ['recognition step (command → event)', m.recognition],
      ['comparison step', m.comparison],
      ['metadata step', m.metadata],
      ['intake (POST → 202)', m.intake],
      ['end-to-end (POST → analysis.completed)', m.e2e],
      ['longest path of stage compute (handler-measured)', m.path],
    ];
    const w1 = Math.max(...rows.map((r) => r[0].length));
    console.log(`${'stage'.padEnd(w1)}  median ms  p95 ms`);
    for (const [name, xs] of rows) console.log(`${name.padEnd(w1)}  ${f(q(xs, 0.5)).padStart(9)}  ${f(q(xs, 0.95)).padStart(6)}`);
    console.log(
      recordAim({ figure: 'photo POST → analysis.completed p50 ÷ longest path of stage compute p50', value: q(m.e2e, 0.5) / q(m.path, 0.5), unit: '×', aim: 1.2, better: 'lower' }),
    );
    console.log(`RSS: before start ${(rss0 / 2 ** 20).toFixed(0)} MB, after loading ${(rssLoaded / 2 ** 20).toFixed(0)} MB, after ${photos.length} analyses ${(rssAfter / 2 ** 20).toFixed(0)} MB`);
    console.log('| point | analyses | RSS MB | main heapUsed MB | main external MB | worker heapUsed / external MB | tfjs tensors | wasm heap MB | sharp cache |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const line of mem) console.log(line);
    console.log(
      `burst of ${photos.length} uploads at once: all ended in ${(burstMs / 1000).toFixed(1)} s; main-thread event-loop delay p50 ${f(h.percentile(50) / 1e6)} ms, p99 ${f(h.percentile(99) / 1e6)} ms, max ${f(h.max / 1e6)} ms`,
    );
  } finally {
    await bus.close();
    await agent.stop();
  }
  if (process.env['BENCH_ENGINES'] !== '0') await engineComparison(listPhotos());
}
