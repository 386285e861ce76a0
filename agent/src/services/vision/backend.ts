/**
 * Chooses and initialises the TensorFlow.js backend.
 *
 * Preference: `tensorflow` (native, needs @tensorflow/tfjs-node) → `wasm`
 * (@tensorflow/tfjs-backend-wasm, single-threaded in Node) → `cpu` (pure JS,
 * ~25x slower than wasm for MobileNet). `force` pins one backend and fails
 * loudly if it cannot be initialised.
 */
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { BackendUnavailableError } from './errors.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendSelection {
  backend: BackendName;
  /** Why each preferred backend was skipped (empty if the first choice worked). */
  skipped: { backend: BackendName; reason: string }[];
  initMs: number;
}

export interface BackendOptions {
  /** Use exactly this backend (throws BackendUnavailableError if it fails). */
  force?: BackendName;
}

const require = createRequire(import.meta.url);
// Kept in a variable so TypeScript does not require type declarations for an
// optional package that is usually not installed.
const TFJS_NODE = '@tensorflow/tfjs-node';

/**
 * Absolute directory holding the tfjs wasm binaries, with trailing separator: the
 * package's dist/ in a checkout, the bundle's own folder in a release (there is no
 * node_modules copy of the package; scripts/release/bundle.ts copies the .wasm files).
 */
export function wasmBinaryDir(): string {
  const beside = path.dirname(fileURLToPath(import.meta.url));
  if (fs.existsSync(path.join(beside, 'tfjs-backend-wasm.wasm'))) return beside + path.sep;
  const entry = require.resolve('@tensorflow/tfjs-backend-wasm');
  return path.dirname(entry) + path.sep;
}

async function tryTensorflow(): Promise<void> {
  try {
    await import(TFJS_NODE);
  } catch (err) {
    throw new BackendUnavailableError(
      `${TFJS_NODE} is not installed or failed to load (${(err as Error).message.split('\n')[0]}); ` +
        'install it on platforms where libtensorflow is available to use the native backend',
      { cause: err },
    );
  }
  if (!(await tf.setBackend('tensorflow'))) {
    throw new BackendUnavailableError(`${TFJS_NODE} loaded but the 'tensorflow' backend did not initialise`);
  }
}

async function tryWasm(): Promise<void> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(wasmBinaryDir());
  } catch (err) {
    throw new BackendUnavailableError(
      `@tensorflow/tfjs-backend-wasm could not be loaded (${(err as Error).message}); run npm install`,
      { cause: err },
    );
  }
  let ok: boolean;
  try {
    ok = await tf.setBackend('wasm');
  } catch (err) {
    throw new BackendUnavailableError(`wasm backend failed to initialise: ${(err as Error).message}`, { cause: err });
  }
  if (!ok) throw new BackendUnavailableError(`wasm backend failed to initialise (binaries looked up in ${wasmBinaryDir()})`);
}

async function tryCpu(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new BackendUnavailableError('tfjs cpu backend failed to initialise');
}

const INITIALISERS: Record<BackendName, () => Promise<void>> = {
  tensorflow: tryTensorflow,
  wasm: tryWasm,
  cpu: tryCpu,
};

let current: Promise<BackendSelection> | null = null;
let currentForce: BackendName | undefined;

async function select(options: BackendOptions): Promise<BackendSelection> {
  const t0 = performance.now();
  const order = options.force ? [options.force] : BACKEND_NAMES;
  const skipped: BackendSelection['skipped'] = [];
  for (const name of order) {
    try {
      await INITIALISERS[name]();
      await tf.ready();
      return { backend: name, skipped, initMs: performance.now() - t0 };
    } catch (err) {
      if (options.force) throw err;
      skipped.push({ backend: name, reason: (err as Error).message });
    }
  }
  throw new BackendUnavailableError(
    `no TensorFlow.js backend could be initialised: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`,
  );
}

/**
 * Initialise the backend once per thread (tfjs state is global). Calling again
 * with the same options returns the same selection; calling with a different
 * `force` re-selects.
 */
export function initBackend(options: BackendOptions = {}): Promise<BackendSelection> {
  if (current && currentForce === options.force) return current;
  currentForce = options.force;
  current = select(options);
  current.catch(() => {
    current = null;
  });
  return current;
}

export function activeBackend(): BackendName {
  const name = tf.getBackend();
  if (name === 'tensorflow' || name === 'wasm' || name === 'cpu') return name;
  throw new BackendUnavailableError(`unexpected active tfjs backend '${name}'; call initBackend() first`);
}
