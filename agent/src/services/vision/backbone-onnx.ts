/**
 * ONNX Runtime engine (onnxruntime-node, CPU provider). Imported by backbone.ts only
 * for `engine: "onnx"` manifests. The session option `disable_quant_qdq` folds the
 * uint8 weights' DequantizeLinear nodes at load time: without it MobileNet V2 takes
 * 10-12 ms per image instead of ~4 ms here (../shared/models/mobilenet_v2_100_224_quant/SOURCE.md).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { classProbs, sha256Hex, type BackboneOutput, type EngineImpl, type EngineLoadContext } from './backbone.js';
import { ModelLoadError } from './errors.js';

/**
 * One intra-op thread: on the 2-core gateway the worker shares the CPU with sharp and the
 * other services, and ORT's default (a thread per core, spinning) was slower and jittery
 * under load — MobileNet V2 p50 22.6 ms / p90 40 ms with the default vs 13.3 / 13.7 ms with
 * one thread, same busy machine (README.md "Timings").
 * No CPU memory arena and no memory pattern: with them ORT keeps the activation buffers of
 * the largest run reserved between photos (~10 MB resident at idle, docs/release.md "Where
 * the memory goes"); without them each run allocates and frees its buffers, and the
 * launcher's fixed glibc mmap threshold returns them to the kernel. Inference time did not
 * change measurably (p50 17-21 ms either way on the busy test machine).
 */
export const ONNX_SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  enableCpuMemArena: false,
  enableMemPattern: false,
  extra: { session: { disable_quant_qdq: '1' } },
};

export async function loadOnnxBackbone(ctx: EngineLoadContext): Promise<EngineImpl> {
  const { manifest: m, input } = ctx;
  const file = path.join(ctx.dir, m.file);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new ModelLoadError('MODEL_NOT_FOUND', `cannot read ONNX model ${file} named by the manifest: ${(err as Error).message}`, { cause: err });
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, ONNX_SESSION_OPTIONS);
  } catch (err) {
    throw new ModelLoadError('MODEL_INVALID', `ONNX Runtime cannot load ${file}: ${(err as Error).message}`, { cause: err });
  }
  // The superRefine of ModelManifestSchema guarantees the names for onnx manifests.
  const inputName = m.input.name ?? 'input';
  const embName = m.outputs.embedding ?? 'embedding';
  const probsName = m.outputs.probs ?? 'probs';
  const missing = [
    ...(!session.inputNames.includes(inputName) ? [`input '${inputName}' (has ${session.inputNames.join(', ')})`] : []),
    ...[embName, probsName].filter((n) => !session.outputNames.includes(n)).map((n) => `output '${n}' (has ${session.outputNames.join(', ')})`),
  ];
  if (missing.length) {
    await session.release();
    throw new ModelLoadError('MODEL_INVALID', `ONNX model ${file} lacks ${missing.join(' and ')}; fix input.name / outputs in the manifest`);
  }
  const s = input.size;
  const dims = (n: number): number[] => (input.layout === 'NCHW' ? [n, 3, s, s] : [n, s, s, 3]);

  const infer = async (data: Float32Array, n: number): Promise<BackboneOutput[]> => {
    const feeds = { [inputName]: new ort.Tensor('float32', data, dims(n)) };
    const res = await session.run(feeds, [embName, probsName]);
    const emb = res[embName];
    const probs = res[probsName];
    if (!emb || !probs) throw new ModelLoadError('MODEL_INVALID', `ONNX model did not return '${embName}' and '${probsName}'`);
    const e = emb.data as Float32Array;
    const p = probs.data as Float32Array;
    const de = e.length / n;
    const dp = p.length / n;
    const out: BackboneOutput[] = [];
    for (let i = 0; i < n; i++) {
      out.push({
        embedding: e.slice(i * de, (i + 1) * de),
        probs: classProbs(p.slice(i * dp, (i + 1) * dp), ctx.labels.length, m.outputs.softmax, m.outputs.background),
      });
    }
    emb.dispose();
    probs.dispose();
    return out;
  };
  // Warm-up pass: learns the embedding size and takes the first-run cost out of the first photo.
  const probe = (await infer(new Float32Array(3 * s * s), 1))[0];
  return {
    embeddingDim: probe?.embedding.length ?? 0,
    sha256: sha256Hex([bytes]),
    runtime: 'onnxruntime',
    runtimeSkipped: [],
    infer,
    memory: () => ({}),
    dispose: () => void session.release(),
  };
}
