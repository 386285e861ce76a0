/**
 * Message sizes on the agent's local bus (`npm run bench -- messages`): a real agent in this
 * process with the real model (MODEL_DIR) analyses ~10 real photos and a technician labels
 * one; every payload is measured as the broker receives it (bench/message-sizes.ts).
 * docs/messages.md explains what travels as a reference and shows the figures.
 */
import { recordAim } from './aims.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig } from '@tu/firmware-config';
import { silentLogger } from '@tu/shared';
import { startAgent } from '@tu/agent';
import { inject } from '../test/support/harness.js';
import { recordMessageSizes, sizeTable } from './message-sizes.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = process.env['MODEL_DIR'] ?? path.resolve(ROOT, '../shared/models/mobilenet_v2_100_224_quant');
const IMAGES_DIR = process.env['TU_TESTDATA_DIR'] ?? path.resolve(ROOT, '../shared/testdata/images');
const PHOTOS = Number(process.env['BENCH_PHOTOS'] ?? 10);

/** Max bytes per type measured before the bus carried references (mobilenet_v2, 1280-d, real photos; issue 10). */
export const BEFORE_REFS: Record<string, number> = {
  'cmd/analysis.comparison.request': 20058,
  'cmd/analysis.metadata.request': 20548,
  'cmd/analysis.recognition.request': 10088,
  'evt/analysis.completed': 21536,
  'evt/analysis.started': 10126,
  'evt/comparison.completed': 1108,
  'evt/metadata.sorted': 1273,
  'evt/recognition.completed': 11269,
  'evt/tu.image.uploaded': 10083,
};

/** Up to `n` photos, one type folder after another (round-robin), so several machines and types appear. */
function pickPhotos(n: number): string[] {
  const dirs = fs
    .readdirSync(IMAGES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== 'SOURCES')
    .map((d) => fs.readdirSync(path.join(IMAGES_DIR, d.name)).filter((f) => /\.jpe?g$/i.test(f)).sort().map((f) => path.join(IMAGES_DIR, d.name, f)));
  const out: string[] = [];
  for (let i = 0; out.length < n && dirs.some((d) => d.length > i); i++) for (const d of dirs) if (d[i] && out.length < n) out.push(d[i]!);
  return out;
}

export default async function messagesBench(): Promise<void> {
  if (!fs.existsSync(MODEL_DIR) || !fs.existsSync(IMAGES_DIR)) {
    console.log(`skipped: model (${MODEL_DIR}) or photos (${IMAGES_DIR}) not found`);
    return;
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tu-bench-messages-'));
  const config = loadAgentConfig({
    env: {},
    overrides: { gatewayId: 'gw-bench', dataDir, 'broker.port': 0, 'http.port': 0, 'http.host': '127.0.0.1', 'bus.secret': 'bench-secret-bench-secret-bench-secret-01', 'model.dir': MODEL_DIR, 'log.level': 'silent' },
  });
  const agent = await startAgent(config, { logger: silentLogger() });
  const rec = recordMessageSizes(agent.broker.aedes);
  try {
    const ids: string[] = [];
    for (const file of pickPhotos(PHOTOS)) {
      const res = await inject(agent, { method: 'POST', url: '/api/v1/images?machineId=M-bench', payload: fs.readFileSync(file), headers: { 'content-type': 'image/jpeg' } });
      if (res.statusCode !== 202) throw new Error(`bench: ${file} → ${res.statusCode} ${res.body}`);
      ids.push(res.json<{ analysisId: string }>().analysisId);
    }
    const end = Date.now() + 120_000;
    const done = () => ids.every((id) => ['completed', 'failed'].includes(agent.orchestrator.status(id)?.status ?? ''));
    while (!done()) {
      if (Date.now() > end) throw new Error('bench: analyses did not finish in 120 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const labelled = await inject(agent, { method: 'POST', url: `/api/v1/analyses/${ids[0]}/label`, payload: { label: 'excavator', by: 'bench' } });
    if (labelled.statusCode >= 300) throw new Error(`bench: label → ${labelled.statusCode} ${labelled.body}`);
    await new Promise((r) => setTimeout(r, 200));
    console.log(`local bus payload sizes, ${ids.length} real photos + 1 label, model ${path.basename(MODEL_DIR)} (bytes as the broker receives them):`);
    console.log(sizeTable(rec.stats(), BEFORE_REFS));
    const biggest = [...rec.largest].sort((a, b) => b[1].bytes - a[1].bytes)[0];
    if (biggest) console.log(recordAim({ figure: `largest message on the bus (${biggest[0]})`, value: biggest[1].bytes, unit: 'bytes', aim: 1536, better: 'lower' }));
  } finally {
    rec.stop();
    await agent.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
