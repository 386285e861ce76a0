/**
 * TF.js engine: adapts model.ts (graph / layers loader) to the engine-independent
 * Backbone of backbone.ts. Imported dynamically by backbone.ts only for tfjs-graph /
 * tfjs-layers manifests, so tfjs and its wasm backend stay out of ONNX-only agents.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './backend.js';
import type { BackboneOutput, EngineImpl, EngineLoadContext } from './backbone.js';
import { ModelLoadError } from './errors.js';
import { loadBackbone as loadTfjsModel } from './model.js';

const MB = 2 ** 20;

export async function loadTfjsBackbone(ctx: EngineLoadContext): Promise<EngineImpl> {
  const { manifest: m, input } = ctx;
  if (m.file !== 'model.json') {
    throw new ModelLoadError('MODEL_INVALID', `TF.js manifests must name model.json as file (got '${m.file}')`);
  }
  if (input.layout !== 'NHWC') {
    throw new ModelLoadError('MODEL_INVALID', `TF.js models take NHWC input; the manifest says ${input.layout}`);
  }
  const selection = await initBackend(ctx.opts.tfjsBackend ? { force: ctx.opts.tfjsBackend } : {});
  const model = await loadTfjsModel(ctx.dir, { embeddingNode: m.outputs.embedding, labels: ctx.labels });
  const expectKind = m.engine === 'tfjs-graph' ? 'graph' : 'layers';
  if (model.info.kind !== expectKind) {
    model.dispose();
    throw new ModelLoadError('MODEL_INVALID', `the manifest says ${m.engine} but ${ctx.dir}/model.json is a ${model.info.kind} model; fix the manifest's engine`);
  }
  const s = input.size;
  return {
    embeddingDim: model.info.embeddingDim,
    sha256: model.info.sha256,
    runtime: selection.backend,
    runtimeSkipped: selection.skipped,
    infer: async (data: Float32Array, n: number): Promise<BackboneOutput[]> => {
      const x = tf.tensor4d(data, [n, s, s, 3]);
      try {
        return model.infer(x);
      } finally {
        x.dispose();
      }
    },
    memory: () => {
      const t = tf.memory();
      // The wasm backend keeps its module (with the linear memory) on the backend object.
      const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: { byteLength: number } } } | undefined)?.wasm?.HEAPU8;
      return { numTensors: t.numTensors, tensorMB: t.numBytes / MB, wasmHeapMB: wasm ? wasm.byteLength / MB : null };
    },
    dispose: () => model.dispose(),
  };
}
