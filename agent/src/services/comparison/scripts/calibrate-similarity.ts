/**
 * Similarity threshold calibration on the test photos with the vision engine's real
 * embeddings (the same vector recognition.completed carries):
 *
 *   tsx agent/src/services/comparison/scripts/calibrate-similarity.ts [--images DIR] [--model DIR]
 *
 * Same physical machine (from MANIFEST.csv notes / file names): surya_img05/11/13 (Kobelco),
 * rp_jcb530s/s1/s2 (JCB 530), bigrock_IMG_1573/1574 (backhoe). Every other pair of the
 * labelled photos (machines + negatives) counts as "different machine".
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { listLabelledImages } from '../../vision/dataset.js';
import { embedImages } from '../../vision/embed-dataset.js';
import { createVisionEngine } from '../../vision/engine.js';
import { calibrateSimilarity, type LabelledPair } from '../calibrate.js';
import { cosineSimilarity } from '../similarity.js';

const root = path.resolve(import.meta.dirname, '../../../../..');
const { values: a } = parseArgs({ options: { images: { type: 'string' }, model: { type: 'string' } } });
const imagesDir = path.resolve(a.images ?? process.env['TU_TESTDATA_DIR'] ?? path.join(root, '../shared/testdata/images'));
const modelDir = path.resolve(a.model ?? process.env['MODEL_DIR'] ?? path.join(root, '../shared/models/mobilenet_v2_100_224_quant'));
export const SAME_MACHINE_GROUPS = [
  ['surya_img05.jpeg', 'surya_img11.jpeg', 'surya_img13.jpeg'],
  ['rp_jcb530s.jpg', 'rp_jcb530s1.jpg', 'rp_jcb530s2.jpg'],
  ['bigrock_IMG_1573.jpg', 'bigrock_IMG_1574.jpg'],
];
const gid = (f: string): number => SAME_MACHINE_GROUPS.findIndex((g) => g.includes(path.basename(f)));

const engine = await createVisionEngine({ modelDir });
const { embedded } = await embedImages(engine, await listLabelledImages(imagesDir));
engine.dispose();
const pairs: (LabelledPair & { sameType: boolean; s: number })[] = [];
for (let i = 0; i < embedded.length; i++) {
  for (let j = i + 1; j < embedded.length; j++) {
    const x = embedded[i]!;
    const y = embedded[j]!;
    const g = gid(x.file);
    const a1 = Array.from(x.embedding);
    const b1 = Array.from(y.embedding);
    pairs.push({ a: a1, b: b1, sameMachine: g >= 0 && g === gid(y.file), sameType: x.label === y.label, s: cosineSimilarity(a1, b1) });
  }
}
const same = pairs.filter((p) => p.sameMachine).map((p) => p.s);
const diff = pairs.filter((p) => !p.sameMachine).map((p) => p.s);
const diffType = pairs.filter((p) => !p.sameMachine && p.sameType).map((p) => p.s);
const q = (xs: number[], p: number): number => [...xs].sort((u, v) => u - v)[Math.floor(p * (xs.length - 1))] ?? NaN;
const auc = same.reduce((acc, s) => acc + diff.filter((d) => d < s).length / diff.length, 0) / same.length;
console.log(`model ${path.basename(modelDir)}, ${embedded.length} photos, ${same.length} same-machine pairs, ${diff.length} different-machine pairs (${diffType.length} of the same type)`);
console.log(`same machine: ${same.map((s) => s.toFixed(3)).sort().join(' ')}`);
console.log(`different: p50 ${q(diff, 0.5).toFixed(3)} p90 ${q(diff, 0.9).toFixed(3)} p99 ${q(diff, 0.99).toFixed(3)} max ${Math.max(...diff).toFixed(3)}; same type: p50 ${q(diffType, 0.5).toFixed(3)} max ${Math.max(...diffType).toFixed(3)}; AUC ${auc.toFixed(3)}`);
console.log('| threshold | TPR same machine ≥ t | FPR different ≥ t | FPR same type, different machine ≥ t | different < t | same < t |');
console.log('|---|---|---|---|---|---|');
for (const t of [0.7, 0.75, 0.78, 0.8, 0.82, 0.84, 0.85, 0.86, 0.88, 0.9]) {
  const f = (xs: number[], ge: boolean): string => `${((100 * xs.filter((x) => (ge ? x >= t : x < t)).length) / xs.length).toFixed(1)}%`;
  console.log(`| ${t} | ${f(same, true)} | ${f(diff, true)} | ${f(diffType, true)} | ${f(diff, false)} | ${f(same, false)} |`);
}
console.log('calibrateSimilarity (≤ 1% false match, 5% quantile of same):', JSON.stringify(calibrateSimilarity(pairs)));
