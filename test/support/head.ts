import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LabelledImage } from '@tu/agent/internal/services/vision/dataset';
import { embedImages } from '@tu/agent/internal/services/vision/embed-dataset';
import { createVisionEngine } from '@tu/agent/internal/services/vision/engine';
import { saveHead } from '@tu/agent/internal/services/vision/head-format';
import { trainHead } from '@tu/agent/internal/services/vision/head';
import { IMAGES_DIR, MODEL_DIR } from './data.js';

/** Trains a logistic-regression head on `images` with the real model; returns the head file's path. */
export async function trainHeadOn(images: LabelledImage[]): Promise<string> {
  const engine = await createVisionEngine({ modelDir: MODEL_DIR });
  const info = engine.info();
  const { embedded } = await embedImages(engine, images);
  engine.dispose();
  const head = trainHead(embedded, {
    kind: 'logreg',
    imagesDir: IMAGES_DIR,
    backbone: { id: info.model.id, version: info.model.version, embeddingDim: info.model.embeddingDim },
    preprocessing: { fit: info.preprocessing.fit, tta: info.preprocessing.tta },
  });
  const headPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tu-head-')), 'head.json');
  await saveHead(headPath, head);
  return headPath;
}
