import { metadataResult, serveStep, StepError, type BusClient, type MetadataResult as WireMetadataResult } from '@tu/shared';
import type { BlobStore } from '../../blobs/store.js';
import { MetadataError } from './errors.js';
import { extractMetadata, type MetadataResult } from './extract.js';
import type { QualityThresholds } from './types.js';

export interface MetadataServiceDeps {
  bus: BusClient;
  blobs: BlobStore;
  thresholds?: Partial<QualityThresholds>;
  maxPixels?: number;
  /** e.g. '+02:00': zone assumed for EXIF times without one (else upload time is used). */
  assumedUtcOffset?: string;
}

const HAS_ZONE = /(Z|[+-]\d{2}:\d{2})$/;

/** The library result in the wire shape (drops notes and times without a zone, which the contract cannot carry). */
export function toWireMetadata(r: MetadataResult): WireMetadataResult {
  const { exif } = r;
  return metadataResult.parse({
    exif: {
      ...(exif.captureTime && HAS_ZONE.test(exif.captureTime) ? { captureTime: exif.captureTime } : {}),
      ...(exif.gps ? { gps: exif.gps } : {}),
      ...(exif.camera ? { camera: exif.camera } : {}),
      ...(exif.orientation ? { orientation: exif.orientation } : {}),
    },
    quality: r.quality,
    warnings: r.warnings,
    category: r.category,
    record: r.record,
    timings: r.timings,
  });
}

/** metadata-service: EXIF, image quality, category, machine-record fields. */
export async function startMetadataService(deps: MetadataServiceDeps): Promise<{ stop(): Promise<void> }> {
  const unsubscribe = await serveStep(deps.bus, 'metadata', async (cmd) => {
    const { data } = cmd;
    const rec = data.previous.recognition;
    try {
      const r = await extractMetadata(deps.blobs.pathOf(data.image.sha256), {
        uploadedAt: data.uploadedAt,
        ...(deps.thresholds ? { thresholds: deps.thresholds } : {}),
        ...(deps.maxPixels ? { maxPixels: deps.maxPixels } : {}),
        ...(deps.assumedUtcOffset ? { assumedUtcOffset: deps.assumedUtcOffset } : {}),
        ...(rec ? { recognition: { machineType: rec.machineType, confidence: rec.confidence, imagenetTopK: rec.imagenetTopK } } : {}),
        ...(data.registered ? { registered: data.registered } : {}),
      });
      return toWireMetadata(r);
    } catch (err) {
      if (err instanceof MetadataError) throw new StepError(err.code, err.message, false);
      throw err;
    }
  });
  await deps.bus.markReady();
  return { stop: unsubscribe };
}
