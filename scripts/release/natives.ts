/**
 * The production native modules for one architecture, staged into the release's
 * node_modules: sharp with its @img binaries, better-sqlite3 (cross-compiled for arm64
 * with Debian's g++-aarch64-linux-gnu), onnxruntime-node with only that architecture's
 * binary. Packages the build host lacks come from the npm registry (`npm pack`) into
 * dist/cache, so a second build is offline.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export type Arch = 'x64' | 'arm64';
export const ROOT = path.resolve(import.meta.dirname, '../..');
const NM = path.join(ROOT, 'node_modules');
export const CACHE = path.join(ROOT, 'dist', 'cache');

const pkgJson = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };

/** Copies a package (or some of its entries) from the repo's node_modules. */
function copyPackage(name: string, dest: string, only?: string[]): void {
  const src = path.join(NM, name);
  const to = path.join(dest, 'node_modules', name);
  fs.mkdirSync(to, { recursive: true });
  for (const entry of only ?? fs.readdirSync(src)) {
    if (fs.existsSync(path.join(src, entry))) fs.cpSync(path.join(src, entry), path.join(to, entry), { recursive: true });
  }
}

/** A registry package unpacked into dist/cache/<name>@<version>/ (downloaded once). */
export function fetchPackage(name: string, version: string): string {
  const dir = path.join(CACHE, `${name.replace('/', '+')}@${version}`);
  if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
  fs.mkdirSync(CACHE, { recursive: true });
  const out = execFileSync('npm', ['pack', `${name}@${version}`, '--pack-destination', CACHE, '--json'], { encoding: 'utf8' });
  const [packed] = JSON.parse(out) as { filename: string }[];
  if (!packed) throw new Error(`npm pack ${name}@${version} packed nothing`);
  const { filename } = packed;
  const tgz = path.join(CACHE, filename.replace(/^@/, '').replace('/', '-'));
  const tmp = `${dir}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  execFileSync('tar', ['-xzf', tgz, '-C', tmp, '--strip-components=1']);
  fs.rmSync(tgz);
  fs.renameSync(tmp, dir);
  return dir;
}

function placeFetched(name: string, version: string, dest: string): void {
  fs.cpSync(fetchPackage(name, version), path.join(dest, 'node_modules', name), { recursive: true });
}

function sharp(arch: Arch, dest: string): void {
  copyPackage('sharp', dest, ['package.json', 'dist', 'LICENSE']);
  const sharpPkg = pkgJson(path.join(NM, 'sharp'));
  for (const dep of Object.keys(sharpPkg.dependencies ?? {})) copyPackage(dep, dest);
  for (const name of [`@img/sharp-linux-${arch}`, `@img/sharp-libvips-linux-${arch}`]) {
    const version = sharpPkg.optionalDependencies?.[name];
    if (!version) throw new Error(`sharp ${sharpPkg.version} names no ${name}`);
    if (fs.existsSync(path.join(NM, name))) copyPackage(name, dest);
    else placeFetched(name, version, dest);
  }
}

/** better-sqlite3's addon for `arch`: the installed one on a matching host, else cross-compiled once. */
function betterSqliteBinary(arch: Arch): string {
  const installed = path.join(NM, 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
  if (arch === process.arch) return installed;
  const version = pkgJson(path.join(NM, 'better-sqlite3')).version;
  const cached = path.join(CACHE, `better-sqlite3-${version}-node-abi${process.versions.modules}-linux-${arch}.node`);
  if (fs.existsSync(cached)) return cached;
  if (arch !== 'arm64') throw new Error(`no cross-compiler set up for ${arch}`);
  const work = fs.mkdtempSync(path.join(CACHE, 'bsq-'));
  for (const e of ['package.json', 'binding.gyp', 'deps', 'src']) fs.cpSync(path.join(NM, 'better-sqlite3', e), path.join(work, e), { recursive: true });
  const nodeGyp = path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const env = { ...process.env, CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', LINK: 'aarch64-linux-gnu-g++', AR: 'aarch64-linux-gnu-ar' };
  console.log(`cross-compiling better-sqlite3 ${version} for linux-arm64 (about 2 minutes, once; cached in ${CACHE})`);
  // The Node headers of the build host (npm's nodedir) serve: the runtime shipped is the same version.
  try {
    execFileSync(process.execPath, [nodeGyp, 'rebuild', '--arch=arm64', `--nodedir=${path.dirname(path.dirname(process.execPath))}`, '-j', '2'], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 2 ** 20 });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    throw new Error(`cross-compiling better-sqlite3 failed (needs Debian's g++-aarch64-linux-gnu):\n${e.stderr?.toString().slice(-4000) ?? ''}`, { cause: err });
  }
  const built = path.join(work, 'build', 'Release', 'better_sqlite3.node');
  execFileSync('aarch64-linux-gnu-strip', ['--strip-unneeded', built]);
  fs.copyFileSync(built, cached);
  fs.rmSync(work, { recursive: true, force: true });
  return cached;
}

function betterSqlite(arch: Arch, dest: string): void {
  copyPackage('better-sqlite3', dest, ['package.json', 'lib', 'LICENSE']);
  for (const dep of ['bindings', 'file-uri-to-path']) copyPackage(dep, dest);
  const to = path.join(dest, 'node_modules', 'better-sqlite3', 'build', 'Release');
  fs.mkdirSync(to, { recursive: true });
  fs.copyFileSync(betterSqliteBinary(arch), path.join(to, 'better_sqlite3.node'));
}

function onnxruntime(arch: Arch, dest: string): void {
  copyPackage('onnxruntime-node', dest, ['package.json', 'dist', 'LICENSE', 'README.md']);
  copyPackage('onnxruntime-common', dest, ['package.json', 'dist', 'LICENSE']);
  const napi = fs.readdirSync(path.join(NM, 'onnxruntime-node', 'bin')).find((d) => d.startsWith('napi-v'));
  if (!napi) throw new Error('onnxruntime-node ships no napi binaries');
  const rel = path.join('bin', napi, 'linux', arch);
  fs.cpSync(path.join(NM, 'onnxruntime-node', rel), path.join(dest, 'node_modules', 'onnxruntime-node', rel), { recursive: true });
}

/** The packages the bundle leaves external (scripts/release/bundle.ts), staged for `arch`. */
export function stageNatives(arch: Arch, dest: string): void {
  sharp(arch, dest);
  betterSqlite(arch, dest);
  onnxruntime(arch, dest);
}

/** Node.js for `arch`, the same version as the build host (better-sqlite3's ABI). */
export function stageRuntime(arch: Arch, dest: string): string {
  const version = process.versions.node;
  const pkg = fetchPackage(`node-linux-${arch}`, version);
  const to = path.join(dest, 'runtime');
  fs.mkdirSync(path.join(to, 'bin'), { recursive: true });
  fs.copyFileSync(path.join(pkg, 'bin', 'node'), path.join(to, 'bin', 'node'));
  fs.chmodSync(path.join(to, 'bin', 'node'), 0o755);
  fs.copyFileSync(path.join(pkg, 'LICENSE'), path.join(to, 'LICENSE'));
  return version;
}
