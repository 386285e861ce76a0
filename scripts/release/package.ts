/**
 * `npm run package`: writes dist/release/tu-agent-<version>-linux-<arch>.tar.gz for
 * x64 and arm64. The tarball unpacks to one folder `tu-agent/` that runs on its own
 * (see docs/release.md for the layout and the contract checks rely on).
 *
 *   tsx scripts/release/package.ts [--arch x64,arm64] [--version V] [--model DIR] [--head FILE] [--out DIR]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bundleAgent, bundledPackages, EXTERNAL, ROOT } from './bundle.js';
import { stageNatives, stageRuntime, type Arch } from './natives.js';
import { licenceText } from './licences.js';
import { stageModel } from './model.js';
import { RELEASE_VERSION } from '../../agent/src/release/layout.js';

const NM = path.join(ROOT, 'node_modules');

interface Options {
  arches: Arch[];
  version: string;
  modelDir: string;
  headFile: string | null;
  out: string;
}

function options(argv = process.argv.slice(2)): Options {
  const { values } = parseArgs({
    args: argv,
    options: { arch: { type: 'string', default: 'x64,arm64' }, version: { type: 'string' }, model: { type: 'string' }, head: { type: 'string' }, out: { type: 'string' } },
  });
  const arches = values.arch.split(',').map((a) => a.trim());
  for (const a of arches) if (a !== 'x64' && a !== 'arm64') throw new Error(`--arch: x64 and/or arm64, not ${a}`);
  const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const profile = JSON.parse(fs.readFileSync(path.join(ROOT, 'firmware-config/profiles/developer.json'), 'utf8')) as { model: { dir: string } };
  const modelDir = path.resolve(values.model ?? process.env.MODEL_DIR ?? path.resolve(ROOT, profile.model.dir));
  const defaultHead = path.join(ROOT, 'dist/head/default-head.json');
  const headFile = values.head ? path.resolve(values.head) : fs.existsSync(defaultHead) ? defaultHead : null;
  const version = values.version ?? rootPkg.version;
  // The installed agent refuses a release.json whose version is not one (agent/src/release/layout.ts):
  // refused here, before an artifact that could never be installed is built.
  if (!RELEASE_VERSION.test(version)) throw new Error(`--version: a version like 1.2.3 or 1.2.3-rc.1 (digits, letters, dots, - and +; no / or ..), not ${JSON.stringify(version)}`);
  return { arches: arches as Arch[], version, modelDir, headFile, out: path.resolve(values.out ?? path.join(ROOT, 'dist/release')) };
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function writeFile(file: string, text: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode });
}

async function main(): Promise<void> {
  const o = options();
  const t0 = performance.now();
  const stageRoot = path.join(o.out, 'stage');
  const bundleDir = path.join(stageRoot, 'bundle');
  const meta = await bundleAgent(bundleDir);
  const uiDir = path.join(ROOT, 'agent/ui/dist');
  if (!fs.existsSync(path.join(uiDir, 'index.html'))) throw new Error('agent/ui/dist is missing: run npm run build first');
  const commit = git(['rev-parse', '--short=12', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) ? '-dirty' : '';
  const mtime = git(['log', '-1', '--format=%ct']) || String(Math.floor(Date.now() / 1000));
  for (const arch of o.arches) {
    const dest = path.join(stageRoot, arch, 'tu-agent');
    fs.rmSync(path.dirname(dest), { recursive: true, force: true });
    fs.mkdirSync(dest, { recursive: true });
    fs.cpSync(bundleDir, path.join(dest, 'lib'), { recursive: true });
    stageNatives(arch, dest);
    const node = stageRuntime(arch, dest);
    const { model, head } = stageModel(o, dest);
    fs.cpSync(uiDir, path.join(dest, 'ui'), { recursive: true });
    // firmware-config finds its profiles at ../profiles from the bundle (firmware-config/src/load.ts).
    fs.cpSync(path.join(ROOT, 'firmware-config/profiles'), path.join(dest, 'profiles'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'firmware-config/schema'), path.join(dest, 'schema'), { recursive: true });
    fs.mkdirSync(path.join(dest, 'systemd'));
    fs.copyFileSync(path.join(ROOT, 'agent/systemd/tu-agent.service'), path.join(dest, 'systemd/tu-agent.service'));
    writeFile(path.join(dest, 'bin/tu-agent'), fs.readFileSync(path.join(ROOT, 'agent/systemd/tu-agent.launcher.sh'), 'utf8'), 0o755);
    fs.copyFileSync(path.join(ROOT, 'docs/release.md'), path.join(dest, 'README.md'));
    const release = { name: 'tu-agent', version: o.version, commit: commit + dirty, builtAt: new Date(Number(mtime) * 1000).toISOString(), arch, node: `v${node}`, model, head };
    writeFile(path.join(dest, 'release.json'), JSON.stringify(release, null, 2) + '\n');
    const { licence, notice } = licenceText({ bundled: bundledPackages(meta), external: EXTERNAL, nodeModules: path.join(dest, 'node_modules'), repoModules: NM, modelDir: path.join(dest, 'models', model.id), runtimeLicence: path.join(dest, 'runtime/LICENSE'), root: ROOT });
    writeFile(path.join(dest, 'LICENSE'), licence);
    writeFile(path.join(dest, 'NOTICE'), notice);
    fs.mkdirSync(o.out, { recursive: true });
    const tarball = path.join(o.out, `tu-agent-${o.version}-linux-${arch}.tar.gz`);
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${mtime}`, '-I', 'gzip -9 -n', '-cf', tarball, '-C', path.dirname(dest), 'tu-agent']);
    console.log(`${path.relative(ROOT, tarball)}  ${(fs.statSync(tarball).size / 1e6).toFixed(1)} MB  (agent ${o.version}, ${commit}${dirty}, node v${node}, model ${model.id}, head ${head ? head.id : 'none'})`);
  }
  fs.rmSync(stageRoot, { recursive: true, force: true });
  console.log(`packaged in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

await main();
