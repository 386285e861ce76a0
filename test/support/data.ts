import fs from 'node:fs';
import path from 'node:path';

// Real model and photos beside the repo (never copied into it); .ci/run sets both variables.
export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const MODEL_DIR = process.env['MODEL_DIR'] ?? path.resolve(REPO_ROOT, '../shared/models/mobilenet_v2_100_224_quant');
export const IMAGES_DIR = process.env['TU_TESTDATA_DIR'] ?? path.resolve(REPO_ROOT, '../shared/testdata/images');
export const photo = (rel: string): string => path.join(IMAGES_DIR, rel);
export const photoBytes = (rel: string): Buffer => fs.readFileSync(photo(rel));
/** Both backbones of ../shared/models, for tests that compare engines. */
export const SHARED_MODELS = path.resolve(REPO_ROOT, '../shared/models');
export const V2_ONNX_DIR = path.join(SHARED_MODELS, 'mobilenet_v2_100_224_quant');
export const V1_TFJS_DIR = path.join(SHARED_MODELS, 'mobilenet_v1_025_224_tfhub');
