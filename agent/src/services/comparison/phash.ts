/**
 * 64-bit perceptual hashes as 16 hex chars, and Hamming distance.
 * `phash` (DCT, default): greyscale 32x32, 2-D DCT-II, top-left 8x8 coefficients,
 * bit = coefficient > median of the 63 AC coefficients (DC excluded from the median).
 * `dhash`: greyscale 9x8, bit = left pixel brighter than right neighbour.
 * The DCT hash separated re-encoded/resized/cropped copies from other photos better
 * on the test photos (README.md has the figures).
 */
import sharp from 'sharp';
import { ComparisonError } from './errors.js';

// Memory: libvips' operation cache keeps decoded pipelines alive and every extra libvips
// thread gets its own glibc malloc arena; on a 2-core gateway neither helps throughput
// (measured in bench/pipeline.bench.ts). Process-wide settings, idempotent.
sharp.cache(false);
sharp.concurrency(1);

export type HashInput = string | Buffer;

async function greyPixels(input: HashInput, w: number, h: number): Promise<Uint8Array> {
  try {
    const { data } = await sharp(input, { limitInputPixels: 50e6 })
      .rotate()
      .resize(w, h, { fit: 'fill', kernel: 'lanczos3' })
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return new Uint8Array(data.buffer, data.byteOffset, w * h);
  } catch (err) {
    throw new ComparisonError(
      'IMAGE_DECODE_FAILED',
      `Cannot hash image: ${err instanceof Error ? err.message : String(err)}. Provide a complete JPEG, PNG or WebP.`,
      { cause: err },
    );
  }
}

function bitsToHex(bits: boolean[]): string {
  let hex = '';
  for (let i = 0; i < 64; i += 4) {
    const nib = (bits[i] ? 8 : 0) | (bits[i + 1] ? 4 : 0) | (bits[i + 2] ? 2 : 0) | (bits[i + 3] ? 1 : 0);
    hex += nib.toString(16);
  }
  return hex;
}

const N = 32;
const COS: Float64Array = (() => {
  const c = new Float64Array(N * N);
  for (let k = 0; k < N; k++) for (let n = 0; n < N; n++) c[k * N + n] = Math.cos(((2 * n + 1) * k * Math.PI) / (2 * N));
  return c;
})();

/** DCT-II of the 32x32 block, only the top-left 8x8 coefficients (row-major). */
export function dctLowFrequencies(px: ArrayLike<number>): Float64Array {
  const tmp = new Float64Array(8 * N); // rows: 8 vertical freqs x 32 columns
  for (let u = 0; u < 8; u++) {
    for (let x = 0; x < N; x++) {
      let s = 0;
      for (let y = 0; y < N; y++) s += (COS[u * N + y] as number) * (px[y * N + x] as number);
      tmp[u * N + x] = s;
    }
  }
  const out = new Float64Array(64);
  for (let u = 0; u < 8; u++) {
    for (let v = 0; v < 8; v++) {
      let s = 0;
      for (let x = 0; x < N; x++) s += (COS[v * N + x] as number) * (tmp[u * N + x] as number);
      out[u * 8 + v] = s;
    }
  }
  return out;
}

export function phashFromPixels(px: ArrayLike<number>): string {
  const c = dctLowFrequencies(px);
  const ac = Array.from(c.subarray(1)).sort((a, b) => a - b);
  const median = ((ac[31] as number) + (ac[32] as number)) / 2;
  return bitsToHex(Array.from(c, (v) => v > median));
}

export function dhashFromPixels(px: ArrayLike<number>): string {
  const bits: boolean[] = [];
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) bits.push((px[y * 9 + x] as number) > (px[y * 9 + x + 1] as number));
  return bitsToHex(bits);
}

/** DCT perceptual hash (16 hex chars). */
export async function phash(input: HashInput): Promise<string> {
  return phashFromPixels(await greyPixels(input, N, N));
}

/** Difference hash (16 hex chars). */
export async function dhash(input: HashInput): Promise<string> {
  return dhashFromPixels(await greyPixels(input, 9, 8));
}

export function isHash(h: unknown): h is string {
  return typeof h === 'string' && /^[0-9a-f]{16}$/i.test(h);
}

const POP = Uint8Array.from({ length: 16 }, (_, i) => ((i >> 3) & 1) + ((i >> 2) & 1) + ((i >> 1) & 1) + (i & 1));

/** Hamming distance between two 16-hex-char hashes (0..64). */
export function hammingDistance(a: string, b: string): number {
  if (!isHash(a) || !isHash(b)) {
    throw new ComparisonError('INVALID_HASH', `Perceptual hashes must be 16 hex characters (got "${String(a)}", "${String(b)}").`);
  }
  let d = 0;
  for (let i = 0; i < 16; i++) d += POP[parseInt(a[i] as string, 16) ^ parseInt(b[i] as string, 16)] as number;
  return d;
}
