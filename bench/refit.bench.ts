/**
 * The technicians' teaching loop (`npm run bench -- refit`):
 * 1. how long the on-device refit (services/vision/refit.ts) takes for 100…1,000 examples;
 * 2. how much it helps: a head trained on the catalogue photos only (a stand-in for "the
 *    shipped head has not seen this fleet") is refitted with half of the site photos'
 *    source groups labelled, as technicians would; top-1 on the other half's groups before
 *    and after, per λ. Both halves come from testdata/images; no group is on both sides.
 */
import path from 'node:path';
import { embedTrainingPhotos } from '@tu/agent/internal/services/vision/default-head';
import { DEFAULT_HEAD_TRAINING } from '@tu/agent/internal/services/vision/default-head';
import { predictHead, trainHead } from '@tu/agent/internal/services/vision/head';
import { refitHead } from '@tu/agent/internal/services/vision/refit';
import { listTrainingPhotos } from '@tu/agent/internal/services/vision/training-set';
import { seededRandom } from '@tu/agent/internal/services/vision/vector';
import { IMAGES_DIR, MODEL_DIR, REPO_ROOT } from '../test/support/data.js';
import { fmt, median } from './stats.js';

const TRAIN_DIR = process.env.TU_TRAIN_DIR ?? path.resolve(REPO_ROOT, '../shared/testdata/train');

export default async function refitBench(): Promise<void> {
  const site = await listTrainingPhotos(IMAGES_DIR, 'site');
  const catalogue = await listTrainingPhotos(TRAIN_DIR, 'catalogue');
  const { embedded, backbone } = await embedTrainingPhotos(MODEL_DIR, [...site, ...catalogue]);
  const cat = embedded.filter((e) => e.domain === 'catalogue');
  const siteE = embedded.filter((e) => e.domain === 'site');
  const base = trainHead(cat, { ...DEFAULT_HEAD_TRAINING, calibrationDomain: 'catalogue', imagesDir: TRAIN_DIR, backbone, preprocessing: { fit: 'cover', tta: false } });

  // 1. Time per refit size (examples drawn from the real embeddings, with a little noise).
  const rand = seededRandom(7);
  console.log('\n| examples | refit median (3 runs) |');
  console.log('|---|---|');
  for (const n of [100, 300, 1000]) {
    const ex = Array.from({ length: n }, (_, i) => {
      const s = embedded[i % embedded.length]!;
      return { label: s.label, embedding: Float32Array.from(s.embedding, (v) => v + (rand() - 0.5) * 0.01) };
    });
    const ms = [0, 1, 2].map(() => refitHead(base, ex).summary.ms);
    console.log(`| ${n} | ${fmt(median(ms), 0)} ms |`);
  }

  // 2. Teaching curve on a group split of the site photos.
  const groups = [...new Set(siteE.map((e) => e.group))].sort();
  const shuffled = groups.map((g) => ({ g, r: rand() })).sort((a, b) => a.r - b.r).map((x) => x.g);
  const taught = new Set(shuffled.slice(0, Math.floor(shuffled.length / 2)));
  const teach = siteE.filter((e) => taught.has(e.group));
  const test = siteE.filter((e) => !taught.has(e.group) && e.label !== 'negative');
  const negTest = siteE.filter((e) => !taught.has(e.group) && e.label === 'negative');
  const score = (h: typeof base) => ({
    top1: test.filter((e) => predictHead(h, e.embedding).machineType === e.label).length / test.length,
    neg: negTest.filter((e) => predictHead(h, e.embedding).machineType === 'unknown').length / Math.max(1, negTest.length),
  });
  const before = score(base);
  console.log(`\nteaching: ${teach.length} labelled site photos (${taught.size} groups), tested on ${test.length} machine + ${negTest.length} negative photos of the other ${groups.length - taught.size} groups`);
  console.log('\n| head | top-1 on untaught groups | negatives → unknown |');
  console.log('|---|---|---|');
  console.log(`| catalogue-only head | ${fmt(before.top1 * 100, 1)} % | ${fmt(before.neg * 100, 0)} % |`);
  for (const l2 of [0.25, 0.5, 1, 3]) {
    const { head } = refitHead(base, teach, { l2 });
    const after = score(head);
    console.log(`| refitted with the labels, λ ${l2} | ${fmt(after.top1 * 100, 1)} % | ${fmt(after.neg * 100, 0)} % |`);
  }
}
