/**
 * A power cut (here: kill -9 of the agent process) while a photo is being written leaves its
 * temp file (`.<sha256>.<random>.tmp`) in the blob store. Nothing reads it and the quota does not
 * count it, so before the fix each cut during an upload leaked up to limits.maxUploadBytes of the
 * gateway's flash for good. The next start removes them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tmpDir } from './support/harness.js';
import { api, noisePhoto, startDiskAgent } from './support/disk.js';
import { stopProcess } from './support/processes.js';

const walk = (d: string): string[] => {
  try {
    return fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  } catch {
    return [];
  }
};
const temps = (dataDir: string): string[] => walk(path.join(dataDir, 'blobs')).filter((f) => f.endsWith('.tmp'));
const limits = { limits: { maxUploadBytes: 30 * 1024 * 1024, maxPixels: 100_000_000 } };

test('kill -9 while photos are written: their temp files are removed at the next start, and the photo can be uploaded again', async () => {
  const dataDir = tmpDir('tu-blob-cut-');
  const photos = await Promise.all([0, 1, 2, 3].map(() => noisePhoto(6000)));
  // The kill lands as soon as a temp file shows: a few tries in case a round misses the write.
  for (let round = 0; round < 5 && temps(dataDir).length === 0; round++) {
    const agent = await startDiskAgent(dataDir, limits);
    const sends = photos.map((p) => api(agent.url, 'POST', '/api/v1/images', p).catch(() => undefined));
    const end = Date.now() + 10_000;
    while (Date.now() < end && temps(dataDir).length === 0) await new Promise((r) => setImmediate(r));
    await stopProcess(agent.child, 'SIGKILL');
    await Promise.allSettled(sends);
  }
  const left = temps(dataDir);
  assert.ok(left.length > 0, 'the kill came while a photo was being written (precondition)');
  const leftBytes = left.reduce((n, f) => n + fs.statSync(f).size, 0);

  const agent = await startDiskAgent(dataDir, limits);
  try {
    assert.equal(temps(dataDir), [], `temp files of ${leftBytes} bytes left after the restart`);
    const again = await api(agent.url, 'POST', '/api/v1/images', photos[0]!);
    assert.is(again.status, 202, again.text);
    assert.ok(fs.existsSync(path.join(dataDir, 'blobs', String(again.json['sha256']).slice(0, 2), String(again.json['sha256']).slice(2, 4), String(again.json['sha256']))));
  } finally {
    await stopProcess(agent.child);
  }
});

test.run();
