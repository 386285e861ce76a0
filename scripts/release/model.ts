/**
 * The model and default head a release ships (scripts/release/package.ts): copied into
 * `models/<model id>/` of the staged folder, with the versions release.json records.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
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
 * The version the agent gives the staged model: `sha256-` + 12 hex of the weights' sha256,
 * which the manifest holds and the agent checks the weights against
 * (agent/src/services/vision/backbone.ts loadBackbone). Heads name it in `source.backbone.version`
 * and health reports it as `model.version`, so release.json and `tu-agent version` say the same.
 * A model without a manifest (a TF.js folder the agent infers) falls back to a hash of its files.
 */
function shippedVersion(stagedModelDir: string): string | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(stagedModelDir, 'manifest.json'), 'utf8')) as { sha256?: unknown };
    return typeof m.sha256 === 'string' && /^[0-9a-f]{64}$/.test(m.sha256) ? `sha256-${m.sha256.slice(0, 12)}` : undefined;
  } catch {
    return undefined;
  }
}

