import type { MetadataResult } from '@tu/shared';

/** Image input accepted by the metadata library: a file path or the encoded bytes. */
export type ImageInput = string | Buffer;

export interface GpsPosition {
  latitude: number;
  longitude: number;
  altitude?: number;
}

/** How the time zone of `captureTime` was established. */
export type CaptureTimeZone = 'exif-offset' | 'gps-utc' | 'unknown';

export interface ExifInfo {
  /**
   * ISO 8601. With a UTC offset (`2025-07-29T16:14:03-05:00`) when the zone is known
   * (`captureTimeZone` says how); otherwise camera wall-clock time WITHOUT a designator
   * (`2018-01-26T12:20:28`), never silently shifted by the process time zone.
   */
  captureTime?: string;
  captureTimeZone?: CaptureTimeZone;
  captureTimeTag?: 'DateTimeOriginal' | 'CreateDate' | 'ModifyDate';
  gps?: GpsPosition;
  camera?: { make?: string; model?: string };
  /** EXIF orientation 1..8. */
  orientation?: number;
  /** Set when EXIF was present but unreadable or partly invalid. */
  notes?: string[];
}

export interface QualityMetrics {
  /** Displayed size (after EXIF orientation). */
  width: number;
  height: number;
  megapixels: number;
  /** Variance of the 4-neighbour Laplacian on greyscale 0..255, image downscaled to <= 512 px. */
  sharpness: number;
  /** Mean luma 0..1. */
  brightness: number;
  /** Standard deviation of luma 0..1. */
  contrast: number;
}

export type QualityWarning = 'blurred' | 'too_dark' | 'too_bright' | 'too_small' | 'low_contrast';

export interface QualityThresholds {
  minSharpness: number;
  minBrightness: number;
  maxBrightness: number;
  minMegapixels: number;
  minSide: number;
  minContrast: number;
}

export type PhotoCategory = 'overview' | 'nameplate' | 'other';
export type PhotoQuality = 'good' | 'fair' | 'poor';

/** Subset of the recognition result the metadata step may use. */
export interface RecognitionHint {
  machineType: string;
  confidence?: number;
  imagenetTopK?: { label: string; index: number; score: number }[];
}

export interface RegisteredMachine {
  id?: string;
  type?: string;
  brand?: string;
  model?: string;
  serialNumber?: string;
  name?: string;
}

export interface MachineRecordFields {
  machineId?: string;
  name?: string;
  type?: string;
  typeSource?: 'registered' | 'recognition';
  brand?: string;
  model?: string;
  serialNumber?: string;
  lastSeenAt?: string;
  /** The wire contract's values (shared/src/schemas/results.ts). */
  lastSeenAtSource?: MetadataResult['record']['lastSeenAtSource'];
  lastPosition?: GpsPosition;
  photoQuality: PhotoQuality;
  photoCategory: PhotoCategory;
}
