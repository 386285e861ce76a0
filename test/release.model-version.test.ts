/**
 * The model version a release records (release.json, printed by `tu-agent version`) is the
 * backbone's own version, the one health reports and heads are bound to
 * (agent/src/services/vision/backbone.ts: `sha256-` + 12 hex of the weights' sha256). It was a
 * hash of every shipped model file (labels and notice included), so `tu-agent version` printed
 * a model version beside its head's `backbone` that never matched it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadBackbone } from '@tu/agent/internal/services/vision/backbone';
import { stageModel } from '../scripts/release/model.js';
import { MODEL_DIR } from './support/data.js';
import { tmpDir } from './support/harness.js';

test('release.json model version = the version the agent reports for the shipped model', async () => {
  const dest = tmpDir('release-model-');
  try {
    const { model } = stageModel({ modelDir: MODEL_DIR, headFile: null }, dest);
    const backbone = await loadBackbone(path.join(dest, 'models', model.id));
    try {
      assert.is(model.version, backbone.info.version);
    } finally {
      backbone.dispose();
    }
  } finally {
    fs.rmSync(dest, { recursive: true, force: true });
  }
});

test.run();
