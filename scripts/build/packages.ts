/**
 * Compiles each workspace package's `src/` to `dist/` (one JS file per TS file, same tree),
 * so that everything the product runs (the agent, its worker threads, the relay) is plain
 * JavaScript started by plain `node`. Type checking is `npm run typecheck` (tsc); the
 * sources are written for per-file transpilation (`isolatedModules`, `verbatimModuleSyntax`
 * in tsconfig.json), which is what esbuild does here in about a second.
 *
 * Non-TypeScript files under src/ that the code reads at run time (SQL migrations, JSON)
 * are copied beside the compiled files, so paths relative to `import.meta.url` hold in
 * `dist/` as they do in `src/`. Usage: tsx scripts/build/packages.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const PACKAGES = ['shared', 'firmware-config', 'agent', 'relay'] as const;
/** Files under src/ that are data read at run time, not documentation. */
const ASSET = /\.(sql|json)$/;

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

export async function buildPackages(): Promise<void> {
  for (const pkg of PACKAGES) {
    const src = path.join(ROOT, pkg, 'src');
    const out = path.join(ROOT, pkg, 'dist');
    fs.rmSync(out, { recursive: true, force: true });
    const files = walk(src);
    await build({
      entryPoints: files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
      outdir: out,
      outbase: src,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: 'linked',
      logLevel: 'warning',
    });
    for (const f of files.filter((x) => ASSET.test(x))) {
      const dest = path.join(out, path.relative(src, f));
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.copyFileSync(f, dest);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  await buildPackages();
  console.log(`built ${PACKAGES.join(', ')} in ${Math.round(performance.now() - t0)} ms`);
}
