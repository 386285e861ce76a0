/** Small dense-vector helpers and a seeded RNG (plain TS, no tfjs). */

export type Vec = ArrayLike<number>;

export function dot(a: Vec, b: Vec): number {
  let s = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) s += (a[i] ?? 0) * (b[i] ?? 0);
  return s;
}

export function l2Normalize(v: Vec): Float32Array {
  const out = Float32Array.from(v);
  const norm = Math.sqrt(dot(out, out));
  if (norm > 0) for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / norm;
  return out;
}

export function meanVector(rows: readonly Vec[]): Float32Array {
  const d = rows[0]?.length ?? 0;
  const m = new Float32Array(d);
  for (const r of rows) for (let i = 0; i < d; i++) m[i] = (m[i] ?? 0) + (r[i] ?? 0);
  for (let i = 0; i < d; i++) m[i] = (m[i] ?? 0) / Math.max(1, rows.length);
  return m;
}

export function stdVector(rows: readonly Vec[], mean: Vec, floor = 1e-6): Float32Array {
  const d = mean.length;
  const s = new Float32Array(d);
  for (const r of rows) for (let i = 0; i < d; i++) s[i] = (s[i] ?? 0) + ((r[i] ?? 0) - (mean[i] ?? 0)) ** 2;
  for (let i = 0; i < d; i++) s[i] = Math.max(floor, Math.sqrt((s[i] ?? 0) / Math.max(1, rows.length)));
  return s;
}

export function softmax(logits: readonly number[]): number[] {
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

export function argmax(v: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if ((v[i] ?? -Infinity) > (v[best] ?? -Infinity)) best = i;
  return best;
}

/** Round for compact JSON (head files). */
export function roundArray(v: Vec, digits = 5): number[] {
  const f = 10 ** digits;
  return Array.from(v, (x) => Math.round(x * f) / f);
}

/** mulberry32: tiny deterministic PRNG in [0,1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}
