export * from './errors.js';
export * from './types.js';
export { readExif, exifFromTags, parseExifDate } from './exif.js';
export { decodeForAnalysis, DEFAULT_MAX_PIXELS, ANALYSIS_SIDE, type AnalysisImage } from './decode.js';
export { DEFAULT_QUALITY_THRESHOLDS, laplacianVariance, qualityFromImage, qualityWarnings, measureQuality } from './quality.js';
export { categorize, colourCues, DEFAULT_CATEGORY_OPTIONS, MACHINE_LABELS, TEXT_LABELS, type CategoryDecision, type CategoryOptions } from './category.js';
export { sortIntoRecord, photoQuality, captureTimeUtc, judgeCaptureTime, type CaptureTimeCheck, type SortInput } from './sort.js';
export { extractMetadata, type ExtractOptions, type MetadataResult } from './extract.js';
