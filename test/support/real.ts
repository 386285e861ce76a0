import { deflateSync, crc32 } from 'node:zlib';
import type { AgentConfig } from '@tu/firmware-config';
import type { Agent } from '@tu/agent';
import { listLabelledImages, stratifiedSplit, type LabelledImage } from '@tu/agent/internal/services/vision/dataset';
import { IMAGES_DIR, MODEL_DIR } from './data.js';
import { startTestAgent, testConfig, tmpDir } from './harness.js';
import { trainHeadOn } from './head.js';

export { IMAGES_DIR, MODEL_DIR, REPO_ROOT, photo, photoBytes } from './data.js';

/** Test config with the real in-process services on and the real model. */
export function realConfig(overrides: Record<string, unknown> = {}, dataDir = tmpDir('tu-real-')): AgentConfig {
  return testConfig(
    { 'model.dir': MODEL_DIR, 'services.vision': true, 'services.comparison': true, 'services.metadata': true, ...overrides },
    dataDir,
  );
}

export const startRealAgent = (overrides: Record<string, unknown> = {}, dataDir?: string): Promise<Agent> =>
  startTestAgent({ config: realConfig(overrides, dataDir) });

/** Trains a head on a seeded stratified split of the testdata; returns its path and the held-out photos. */
export async function trainTestHead(seed = 1, testFraction = 0.3): Promise<{ headPath: string; test: LabelledImage[]; train: LabelledImage[] }> {
  const { train, test } = stratifiedSplit(await listLabelledImages(IMAGES_DIR), testFraction, seed);
  return { headPath: await trainHeadOn(train), test, train };
}

/** A multipart/form-data body with one file field. */
export function multipart(field: string, bytes: Buffer, contentType: string, filename = 'photo.jpg'): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----tu${Math.random().toString(16).slice(2)}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: ${contentType}\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { payload: Buffer.concat([head, bytes, tail]), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

const chunk = (type: string, data: Buffer): Buffer => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
};

/**
 * A real decompression bomb: a valid 1-bit greyscale PNG of side × side pixels whose
 * IDAT deflates to a few hundred KB (20000² = 400 MP; 50 MB of zero rows when inflated).
 */
export function pngBomb(side = 20_000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  const row = 1 + Math.ceil(side / 8);
  const raw = Buffer.alloc(row * side); // filter byte 0 + zero pixels
  const idat = deflateSync(raw, { level: 9 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}
