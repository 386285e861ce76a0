/**
 * LICENSE and NOTICE of a release: the licence text of every npm package whose code is
 * in the bundle or in node_modules, of the Node.js runtime, and the model's provenance.
 */
import fs from 'node:fs';
import path from 'node:path';

interface Inputs {
  bundled: string[];
  external: string[];
  /** The release's node_modules (native packages and their dependencies). */
  nodeModules: string;
  repoModules: string;
  modelDir: string;
  runtimeLicence: string;
  root: string;
}

const LICENCE_FILE = /^(licen[cs]e|copying|notice)(\.(md|txt))?$/i;

function packageDirs(nodeModules: string): string[] {
  if (!fs.existsSync(nodeModules)) return [];
  return fs.readdirSync(nodeModules).flatMap((n) => (n.startsWith('@') ? fs.readdirSync(path.join(nodeModules, n)).map((s) => `${n}/${s}`) : [n]));
}

function section(dir: string, name: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version?: string; license?: string };
  const texts = fs.readdirSync(dir).filter((f) => LICENCE_FILE.test(f)).map((f) => fs.readFileSync(path.join(dir, f), 'utf8').trim());
  return `== ${name}@${pkg.version ?? '?'} (${pkg.license ?? 'see text'}) ==\n${texts.join('\n\n') || `(no licence file in the package; declared licence: ${pkg.license ?? 'none'})`}\n`;
}

export function licenceText(i: Inputs): { licence: string; notice: string } {
  const shipped = new Map<string, string>();
  for (const n of i.bundled) shipped.set(n, path.join(i.repoModules, n));
  for (const n of packageDirs(i.nodeModules)) shipped.set(n, path.join(i.nodeModules, n));
  const parts = [
    'TU Edge Analysis gateway agent. Copyright TU Edge Analysis. All rights reserved.',
    'The third-party software shipped in this folder is under its own licences, reproduced below.',
    '',
    `== Node.js runtime (runtime/bin/node) ==\n${fs.readFileSync(i.runtimeLicence, 'utf8').trim()}\n`,
    ...[...shipped.entries()].sort(([a], [b]) => a.localeCompare(b)).filter(([, d]) => fs.existsSync(path.join(d, 'package.json'))).map(([n, d]) => section(d, n)),
  ];
  const modelSource = fs.readdirSync(i.modelDir).filter((f) => /^(SOURCE|LICEN[CS]E)/i.test(f)).map((f) => `--- ${path.join('models', path.basename(i.modelDir), f)} ---\n${fs.readFileSync(path.join(i.modelDir, f), 'utf8').trim()}`);
  const notice = [
    'NOTICE',
    '',
    'Model (models/<id>/): see its provenance and licence below. Keep this notice when redistributing the weights.',
    ...modelSource,
    '',
    'libvips (node_modules/@img/sharp-libvips-*) is LGPL-3.0-or-later and is shipped as a separate shared library that can be replaced.',
    'Machine-type head (models/<id>/head.json, if present): trained by the project; its source photos are not shipped.',
    '',
  ].join('\n');
  return { licence: parts.join('\n'), notice };
}
