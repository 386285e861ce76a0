import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { activeBackend, initBackend, wasmBinaryDir } from '@tu/agent/internal/services/vision/backend';
import { VisionError } from '@tu/agent/internal/services/vision/errors';

test('forcing the native tensorflow backend fails with a typed error when tfjs-node is absent', async () => {
  try {
    await initBackend({ force: 'tensorflow' });
    assert.unreachable('tfjs-node is not installed here');
  } catch (err) {
    assert.instance(err, VisionError);
    assert.is((err as VisionError).code, 'BACKEND_UNAVAILABLE');
    assert.match((err as Error).message, /tfjs-node/);
  }
});

test('automatic selection falls back to wasm and reports why tensorflow was skipped', async () => {
  const sel = await initBackend();
  assert.is(sel.backend, 'wasm');
  assert.is(activeBackend(), 'wasm');
  assert.ok(sel.skipped.some((s) => s.backend === 'tensorflow'));
});

test('wasm binaries are resolved from node_modules with a trailing slash', () => {
  const dir = wasmBinaryDir();
  assert.ok(path.isAbsolute(dir));
  assert.ok(dir.endsWith(path.sep));
  assert.ok(readdirSync(dir).includes('tfjs-backend-wasm.wasm'));
});

test.run();
