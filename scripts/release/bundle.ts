/**
 * Bundles the agent for a release: one ESM file per entry point (the CLI/agent and its
 * worker threads) plus shared chunks, all flat in one folder. Worker threads are
 * started as `new URL('./<name>.js', import.meta.url)` in the sources, so the entry names
 * here must match those file names. Native packages stay external (scripts/release/natives.ts
 * stages them per architecture); everything else, tfjs included, is inside the bundle.
 */
import fs from 'node:fs';
import path from 'node:path';
import { build, type Metafile } from 'esbuild';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const EXTERNAL = ['sharp', 'better-sqlite3', 'onnxruntime-node'];

const ENTRIES = {
  main: 'agent/src/main.ts',
  worker: 'agent/src/services/vision/worker.ts',
  'refit-worker': 'agent/src/services/vision/refit-worker.ts',
  'store-worker': 'agent/src/orchestrator/store-worker.ts',
  'outbox-worker': 'agent/src/uplink/outbox-worker.ts',
  'journal-worker': 'agent/src/intake/journal-worker.ts',
  'writer-thread-worker': 'agent/src/sqlite/writer-thread-worker.ts',
};

export async function bundleAgent(outdir: string): Promise<Metafile> {
  fs.rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([k, v]) => [k, path.join(ROOT, v)])),
    outdir,
    bundle: true,
    splitting: true,
    // Chunks stay beside the entries: code that finds shipped files from import.meta.url
    // (release/layout.ts, firmware-config's profiles) assumes <app>/lib/.
    chunkNames: 'chunk-[hash]',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    // CommonJS dependencies call require() for Node built-ins; ESM output has no require.
    banner: { js: "import { createRequire as __tuCreateRequire } from 'node:module'; const require = __tuCreateRequire(import.meta.url);" },
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    // Stack traces in the journal point at the sources; the sources themselves are not shipped.
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  // Sources named relative to the repository (agent/src/…, node_modules/…) rather than to
  // wherever this build wrote its output: `tu-agent stack` prints them (agent/src/cli/stack.ts).
  for (const f of fs.readdirSync(outdir).filter((x) => x.endsWith('.js.map'))) {
    const file = path.join(outdir, f);
    const map = JSON.parse(fs.readFileSync(file, 'utf8')) as { sources: string[] };
    map.sources = map.sources.map((s) => path.relative(ROOT, path.resolve(outdir, s)));
    fs.writeFileSync(file, JSON.stringify(map));
  }
  // The tfjs wasm backend loads its binaries from the bundle's folder (vision/backend.ts).
  const wasmDir = path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  for (const f of fs.readdirSync(wasmDir).filter((x) => x.endsWith('.wasm'))) fs.copyFileSync(path.join(wasmDir, f), path.join(outdir, f));
  return result.metafile;
}

/** The npm packages whose code the bundle contains (from esbuild's metafile). */
export function bundledPackages(meta: Metafile): string[] {
  const names = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m?.[1]) names.add(m[1]);
  }
  return [...names].sort();
}
