/** Extract embeddings for a labelled photo set (used by training and evaluation). */
import type { LabelledImage } from './dataset.js';
import type { VisionEngine } from './engine.js';
import type { LabelledEmbedding } from './head.js';

export interface EmbeddedImage extends LabelledEmbedding {
  file: string;
  embedding: Float32Array;
  probs: Float32Array;
  decodeMs: number;
  inferenceMs: number;
}

export interface EmbedFailure {
  file: string;
  label: string;
  code: string;
  message: string;
}

export async function embedImages(
  engine: VisionEngine,
  images: readonly LabelledImage[],
  onProgress?: (done: number, total: number) => void,
): Promise<{ embedded: EmbeddedImage[]; failures: EmbedFailure[] }> {
  const embedded: EmbeddedImage[] = [];
  const failures: EmbedFailure[] = [];
  let done = 0;
  for (const img of images) {
    try {
      const e = await engine.embed(img.file);
      embedded.push({ ...img, embedding: e.embedding, probs: e.probs, decodeMs: e.decodeMs, inferenceMs: e.inferenceMs });
    } catch (err) {
      const code = typeof err === 'object' && err && 'code' in err ? String(err.code) : 'UNKNOWN';
      failures.push({ ...img, code, message: (err as Error).message });
    }
    onProgress?.(++done, images.length);
  }
  return { embedded, failures };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return 0;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0;
}
