/**
 * The release artifact's budgets (`npm run bench -- release`): size per architecture with and
 * without the Node runtime, exec → /api/v1/health 200, idle RSS (1.5 s and 10 s after ready), RSS after N photos analysed
 * one after another and its peak, install + first healthy start; and where the memory goes,
 * by turning the services off one by one. Runs the x64 artifact unpacked outside the repo
 * with `env -i`, like test/release.x64.test.ts. Needs `npm run build` (and dist/head for a head).
 *
 *   TU_BENCH_PHOTOS=500 (default) photos; TU_BENCH_STARTS=5 start-up samples;
 *   TU_BENCH_ARCH=x64 builds only the x64 artifact.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listLabelledImages } from '@tu/agent/internal/services/vision/dataset';
import { fmt, median } from './stats.js';
import { IMAGES_DIR } from '../test/support/data.js';
import { artifact, artifactToken, envI, freshHome, startDetached, stopChild, unpack, waitHealth } from '../test/support/release.js';
import { freePort } from '../test/support/processes.js';

const PHOTOS = Number(process.env.TU_BENCH_PHOTOS ?? 500);
const STARTS = Number(process.env.TU_BENCH_STARTS ?? 5);
const MB = 1024 * 1024;

function rssOf(pid: number): { rss: number; hwm: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS') / MB, hwm: kb('VmHWM') / MB };
}

function sizeWithout(tarball: string, exclude: string): number {
  const out = execFileSync('sh', ['-c', `d=$(mktemp -d); tar -xzf ${tarball} -C $d && tar --sort=name --owner=0 --group=0 --exclude=${exclude} -cf - -C $d tu-agent | gzip -9 -n | wc -c; rm -rf $d`], { encoding: 'utf8' });
  return Number(out.trim()) / 1e6;
}

async function startAgent(app: string, extraConfig: Record<string, unknown> = {}) {
  const home = freshHome();
  const [http, bus] = [await freePort(), await freePort()];
  const config = path.join(home, 'agent.json');
  fs.writeFileSync(config, JSON.stringify({ gatewayId: 'gw-bench', dataDir: path.join(home, 'data'), http: { host: '127.0.0.1', port: http }, broker: { host: '127.0.0.1', port: bus }, log: { level: 'warn' }, ...extraConfig }));
  const t0 = performance.now();
  const child = startDetached(envI({}, [path.join(app, 'bin/tu-agent'), 'run', '--config', config], home));
  await waitHealth(http, 60_000, child);
  const readyMs = performance.now() - t0;
  // The installer's token (`tu-agent token`, the device key in the data dir): the API needs one. Signed when asked, outside the timings.
  const auth = () => ({ authorization: `Bearer ${artifactToken([path.join(app, 'bin/tu-agent'), '--config', config], {}, '--ttl', '24h')}` });
  return { child, http, readyMs, auth };
}

async function analyseSequentially(http: number, auth: Record<string, string>, photos: Buffer[], n: number, pid: number): Promise<number> {
  let peak = 0;
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${http}/api/v1/images`, { method: 'POST', headers: { 'content-type': 'image/jpeg', ...auth }, body: photos[i % photos.length]! });
    const { analysisId } = (await res.json()) as { analysisId: string };
    for (;;) {
      const st = ((await (await fetch(`http://127.0.0.1:${http}/api/v1/analyses/${analysisId}`, { headers: auth })).json()) as { status: string }).status;
      if (st === 'completed' || st === 'failed') break;
      await new Promise((r) => setTimeout(r, 5));
    }
    peak = Math.max(peak, rssOf(pid).rss);
  }
  return peak;
}

export default async function releaseBench(): Promise<void> {
  const version = '0.0.0-bench';
  // The arm64 build needs Debian's cross compiler (docs/release.md "Build"); TU_BENCH_ARCH=x64 skips its size row.
  const tarballs = { x64: artifact(version, 'x64'), ...(process.env.TU_BENCH_ARCH === 'x64' ? {} : { arm64: artifact(version, 'arm64') }) };
  console.log('\n| artifact | compressed | without the Node runtime | budget |');
  console.log('|---|---|---|---|');
  for (const [arch, t] of Object.entries(tarballs)) {
    console.log(`| linux-${arch} | ${fmt(fs.statSync(t).size / 1e6, 1)} MB | ${fmt(sizeWithout(t, 'tu-agent/runtime'), 1)} MB | ≤ 80 / ≤ 40 MB |`);
  }

  const app = unpack(tarballs.x64);
  const photos = (await listLabelledImages(IMAGES_DIR)).map((p) => fs.readFileSync(p.file));

  // Install + first healthy start, from the tarball (x64, into a folder as root).
  const installs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tu-bench-root-'));
    const t0 = performance.now();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tu-bench-unpack-'));
    execFileSync('tar', ['-xzf', tarballs.x64, '-C', dir]);
    execFileSync(path.join(dir, 'tu-agent/bin/tu-agent'), ['install', '--root', root, '--no-system'], { stdio: 'ignore', env: {} });
    const { child } = await startAgent(path.join(root, 'opt/tu-agent/current'));
    installs.push(performance.now() - t0);
    await stopChild(child);
  }

  const starts: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    const a = await startAgent(app);
    starts.push(a.readyMs);
    await stopChild(a.child);
  }

  // Memory: the full agent, then without vision, then with no analysis service at all.
  const variants: [string, Record<string, unknown>][] = [
    ['agent, all services', {}],
    ['without vision (model engine + its worker)', { services: { vision: false } }],
    ['without vision, comparison, metadata (sharp users)', { services: { vision: false, comparison: false, metadata: false } }],
  ];
  const rows: string[] = [];
  for (const [name, extra] of variants) {
    const a = await startAgent(app, extra);
    await new Promise((r) => setTimeout(r, 1500));
    const pid = a.child.pid!;
    const idle = rssOf(pid).rss;
    // And once V8's memory reducer has run in each isolate (~8 s after start-up): the figure a gateway lives with.
    await new Promise((r) => setTimeout(r, 8500));
    const settled = rssOf(pid).rss;
    let after = NaN;
    let peak = NaN;
    if (name === 'agent, all services') {
      const t0 = performance.now();
      const seen = await analyseSequentially(a.http, a.auth(), photos, PHOTOS, pid);
      after = rssOf(pid).rss;
      peak = Math.max(seen, rssOf(pid).hwm);
      console.log(`\n${PHOTOS} photos analysed one after another in ${fmt((performance.now() - t0) / 1000, 1)} s`);
    }
    rows.push(`| ${name} | ${fmt(idle, 0)} MB | ${fmt(settled, 0)} MB | ${Number.isNaN(after) ? '—' : `${fmt(after, 0)} MB`} | ${Number.isNaN(peak) ? '—' : `${fmt(peak, 0)} MB`} |`);
    await stopChild(a.child);
  }
  console.log('\n| figure (x64, env -i, artifact) | median | budget |');
  console.log('|---|---|---|');
  console.log(`| exec → /api/v1/health 200 (${STARTS} starts, fresh data dir) | ${fmt(median(starts) / 1000, 2)} s | ≤ 3 s |`);
  console.log(`| install + first healthy start from the tarball (3 runs) | ${fmt(median(installs) / 1000, 2)} s | ≤ 10 s |`);
  console.log(`\n| RSS (launcher settings) | idle, 1.5 s after ready | idle, 10 s after ready | after ${PHOTOS} photos | peak | `);
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log('budgets: idle ≤ 150 MB; after 500 photos ≤ 250 MB; peak ≤ 350 MB');
}
