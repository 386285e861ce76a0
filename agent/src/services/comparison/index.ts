export * from './errors.js';
export { phash, dhash, hammingDistance, isHash, phashFromPixels, dhashFromPixels, type HashInput } from './phash.js';
export { cosineSimilarity, bestMatch, type Candidate, type BestMatch, type Embedding } from './similarity.js';
export { compare, DEFAULT_COMPARISON_THRESHOLDS, type CompareInput, type ComparisonResult, type ComparisonThresholds, type RegisteredProfile, type Verdict } from './verdict.js';
export { calibrateSimilarity, type LabelledPair, type SimilarityCalibration } from './calibrate.js';
