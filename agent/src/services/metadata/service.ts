import { metadataResult, serveStep, StepError, type BusClient, type MetadataResult as WireMetadataResult } from '@tu/shared';
import type { BlobStore } from '../../blobs/store.js';
import { MetadataError } from './errors.js';
import { extractMetadata, type MetadataResult } from './extract.js';
import type { ExifInfo, QualityThresholds } from './types.js';

export interface MetadataServiceDeps {
  bus: BusClient;
  blobs: BlobStore;
  thresholds?: Partial<QualityThresholds>;
  maxPixels?: number;
  /** e.g. '+02:00': zone assumed for EXIF times without one (else upload time is used). */
  assumedUtcOffset?: string;
}

const OFFSET = /(Z|[+-]\d{2}:\d{2})$/;

/**
 * The capture time in the wire shape: the camera's local time with its offset (`unknown`
 * when the photo gives none: a time without a zone is still a fact), plus the instant
 * (`captureTime`) only when the zone is known. exif.ts builds `captureTime` as local time
 * + offset, or local time alone with `captureTimeZone: 'unknown'`.
 */
export function wireCaptureTime(exif: ExifInfo): Pick<WireMetadataResult['exif'], 'captureTime' | 'captureLocalTime'> {
  if (!exif.captureTime) return {};
  const m = OFFSET.exec(exif.captureTime);
  const zone = exif.captureTimeZone;
  if (!m || zone === undefined || zone === 'unknown') {
    return { captureLocalTime: { time: m ? exif.captureTime.slice(0, m.index) : exif.captureTime, offset: 'unknown' } };
  }
  const offset = m[1] === 'Z' ? '+00:00' : (m[1] as string);
  return {
    captureTime: exif.captureTime,
    captureLocalTime: { time: exif.captureTime.slice(0, m.index), offset, offsetFrom: zone },
  };
}

/** The library result in the wire shape (drops notes, the category reason and the EXIF tag name; keeps the capture-time verdict). */
export function toWireMetadata(r: MetadataResult): WireMetadataResult {
  const { exif } = r;
  const wire = metadataResult.safeParse({
    exif: {
      ...wireCaptureTime(exif),
      ...(r.captureCheck ? { captureTimePlausible: r.captureCheck.plausible } : {}),
      ...(r.captureCheck?.plausible === false ? { captureTimeProblem: r.captureCheck.problem } : {}),
      ...(exif.gps ? { gps: exif.gps } : {}),
      ...(exif.camera ? { camera: exif.camera } : {}),
      ...(exif.orientation ? { orientation: exif.orientation } : {}),
    },
    quality: r.quality,
    warnings: r.warnings,
    category: r.category,
    categoryBasis: r.categoryBasis,
    record: r.record,
    timings: r.timings,
  });
  if (wire.success) return wire.data;
  // What the photo holds could not be put in the message (exif.ts keeps it within the format; this
  // is the backstop). The same photo gives the same result every time: failing for good, with the
  // field named, not an INTERNAL_ERROR retried three times.
  const issue = wire.error.issues[0];
  throw new MetadataError('IMAGE_DECODE_FAILED', `the photo's metadata cannot be carried: ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'invalid'}`);
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
      // Failure reasons travel to the cloud: name the photo by its hash, never by its path on the device.
      if (err instanceof MetadataError) {
        const file = deps.blobs.pathOf(data.image.sha256);
        throw new StepError(err.code, `${err.message.split(file).join('the photo')} (photo sha256:${data.image.sha256.slice(0, 12)})`, false);
      }
      throw err;
    }
  });
  await deps.bus.markReady();
  return { stop: unsubscribe };
}
