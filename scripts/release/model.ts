/**
 * The model and default head a release ships (scripts/release/package.ts): copied into
 * `models/<model id>/` of the staged folder, with the versions release.json records.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { modelVersion, parseManifest } from '../../agent/src/services/vision/manifest.js';
import { ROOT } from './bundle.js';

/** Model files shipped: the top-level files of the model dir, without conversion sources. */
function modelFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && !/\.(tflite|py)$/.test(e.name)).map((e) => e.name).sort();
}

export function stageModel(o: { modelDir: string; headFile: string | null }, dest: string): { model: { id: string; version: string; file: string }; head: { id: string; version: string; backbone: string } | null } {
  const id = path.basename(o.modelDir);
  const to = path.join(dest, 'models', id);
  fs.mkdirSync(to, { recursive: true });
  const hash = createHash('sha256');
  const files = modelFiles(o.modelDir);
  for (const f of files) {
    fs.copyFileSync(path.join(o.modelDir, f), path.join(to, f));
    hash.update(fs.readFileSync(path.join(o.modelDir, f)));
  }
  // A manifest kept in the repo for this model travels with it (agent/models/<id>.manifest.json).
  const manifest = path.join(ROOT, 'agent', 'models', `${id}.manifest.json`);
  if (fs.existsSync(manifest) && !files.includes('manifest.json')) fs.copyFileSync(manifest, path.join(to, 'manifest.json'));
  const weights = files.find((f) => /\.(onnx|json)$/.test(f) && f !== 'labels.json') ?? files[0] ?? '';
  let head: { id: string; version: string; backbone: string } | null = null;
  if (o.headFile) {
    fs.copyFileSync(o.headFile, path.join(to, 'head.json'));
    const h = JSON.parse(fs.readFileSync(o.headFile, 'utf8')) as { id?: unknown; version?: unknown; source?: { backbone?: { version?: unknown } } };
    head = { id: String(h.id ?? 'default-head'), version: String(h.version ?? '?'), backbone: String(h.source?.backbone?.version ?? '?') };
  }
  return { model: { id, version: shippedVersion(to) ?? `sha256-${hash.digest('hex').slice(0, 12)}`, file: weights }, head };
}

/**
 * The version the agent gives the staged model (agent/src/services/vision/manifest.ts
 * modelVersion, from the manifest's weights sha256, which loading checks the weights against),
 * so release.json and `tu-agent version` say what heads and health say. A model without a
 * manifest (a TF.js folder the agent infers) falls back to a hash of its files.
 */
function shippedVersion(stagedModelDir: string): string | undefined {
  const file = path.join(stagedModelDir, 'manifest.json');
  if (!fs.existsSync(file)) return undefined;
  const m = parseManifest(JSON.parse(fs.readFileSync(file, 'utf8')), file);
  return m.sha256 === null ? undefined : modelVersion(m.sha256);
}

