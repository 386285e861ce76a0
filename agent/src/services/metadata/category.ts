/**
 * Photo category heuristic: 'overview' (a machine in view), 'nameplate'
 * (close-up of a plate, sign or printed text) or 'other' (no machine evidence).
 *
 * Pixel statistics alone do not separate nameplates from machine photos on the
 * test photos (see README.md: text-component and edge measures overlap), so the
 * heuristic combines the recognition result's ImageNet top-k with a colour cue:
 *  1. text/plate ImageNet labels (menu, web site, scoreboard, street sign, ...)
 *     summing >= textLabelMin → nameplate
 *  2. machineType known with confidence >= machineConfidenceMin, or machine/vehicle
 *     ImageNet labels summing >= vehicleLabelMin → overview
 *  3. (only with a recognition result) no machine evidence and a grey, unsaturated frame (greyFraction >= 0.6 and
 *     mean saturation <= 0.2: bare metal, engraved or stamped plates) → nameplate
 *  4. otherwise: 'other' when a recognition result was given, 'overview' when not
 *     (without recognition there is no evidence against the expected machine photo).
 * Indices are 0-based ImageNet-1k label indices (labels.json order; forklift = 561).
 */
import type { AnalysisImage } from './decode.js';
import type { PhotoCategory, RecognitionHint } from './types.js';

/** ImageNet classes that machine photos land on (ImageNet has no excavator/loader/dozer). */
export const MACHINE_LABELS: ReadonlyMap<number, string> = new Map([
  [561, 'forklift'], [517, 'crane'], [866, 'tractor'], [595, 'harvester'], [856, 'thresher'],
  [730, 'plow'], [803, 'snowplow'], [867, 'trailer truck'], [864, 'tow truck'], [569, 'garbage truck'],
  [717, 'pickup'], [555, 'fire engine'], [779, 'school bus'], [609, 'jeep'], [408, 'amphibian'],
  [847, 'tank'], [586, 'half track'], [634, 'lumbermill'], [575, 'golfcart'], [621, 'lawn mower'],
  [654, 'minibus'], [675, 'moving van'], [661, 'Model T'], [757, 'recreational vehicle'],
  [660, 'mobile home'], [820, 'steam locomotive'], [565, 'freight car'], [913, 'wreck'],
  [479, 'car wheel'], [690, 'oxcart'], [603, 'horse cart'],
]);

/** ImageNet classes that plates, signs and printed text land on. */
export const TEXT_LABELS: ReadonlyMap<number, string> = new Map([
  [922, 'menu'], [916, 'web site'], [549, 'envelope'], [921, 'book jacket'], [446, 'binder'],
  [918, 'crossword puzzle'], [781, 'scoreboard'], [919, 'street sign'], [692, 'packet'],
  [478, 'carton'], [917, 'comic book'], [681, 'notebook'], [769, 'rule'], [685, 'odometer'],
  [530, 'digital clock'], [409, 'analog clock'], [844, 'switch'], [771, 'safe'], [695, 'padlock'],
  [507, 'combination lock'], [798, 'slide rule'], [704, 'parking meter'], [635, 'magnetic compass'],
  [426, 'barometer'], [826, 'stopwatch'], [892, 'wall clock'],
]);

export interface CategoryOptions {
  textLabelMin: number;
  vehicleLabelMin: number;
  machineConfidenceMin: number;
  greyFractionMin: number;
  saturationMax: number;
}

export const DEFAULT_CATEGORY_OPTIONS: Readonly<CategoryOptions> = Object.freeze({
  textLabelMin: 0.3,
  vehicleLabelMin: 0.3,
  machineConfidenceMin: 0.5,
  greyFractionMin: 0.6,
  saturationMax: 0.2,
});

export interface ColourCues {
  /** Mean HSV saturation 0..1. */
  saturation: number;
  /** Fraction of pixels with saturation < 0.15. */
  greyFraction: number;
}

export function colourCues(img: AnalysisImage): ColourCues {
  const { rgb } = img;
  const n = img.aw * img.ah;
  let satSum = 0;
  let grey = 0;
  for (let i = 0; i < n; i++) {
    const r = rgb[i * 3] as number, g = rgb[i * 3 + 1] as number, b = rgb[i * 3 + 2] as number;
    const mx = Math.max(r, g, b);
    const s = mx === 0 ? 0 : (mx - Math.min(r, g, b)) / mx;
    satSum += s;
    if (s < 0.15) grey++;
  }
  return { saturation: n ? satSum / n : 0, greyFraction: n ? grey / n : 0 };
}

function labelSum(rec: RecognitionHint | undefined, set: ReadonlyMap<number, string>): number {
  if (!rec?.imagenetTopK) return 0;
  const names = new Set(set.values());
  let sum = 0;
  for (const t of rec.imagenetTopK) {
    if (!Number.isFinite(t.score)) continue;
    const first = t.label.split(',')[0]?.trim() ?? '';
    if (set.has(t.index) ? set.get(t.index) === first || !names.has(first) : names.has(first)) sum += t.score;
  }
  return sum;
}

export interface CategoryDecision {
  category: PhotoCategory;
  reason: string;
  scores: { textLabels: number; machineLabels: number; saturation: number; greyFraction: number };
}

export function categorize(
  cues: ColourCues,
  recognition?: RecognitionHint,
  options: Partial<CategoryOptions> = {},
): CategoryDecision {
  const o = { ...DEFAULT_CATEGORY_OPTIONS, ...options };
  const textLabels = labelSum(recognition, TEXT_LABELS);
  const machineLabels = labelSum(recognition, MACHINE_LABELS);
  const scores = { textLabels, machineLabels, ...cues };
  const knownMachine =
    recognition !== undefined &&
    recognition.machineType !== 'unknown' &&
    recognition.machineType !== '' &&
    (recognition.confidence ?? 0) >= o.machineConfidenceMin;
  if (textLabels >= o.textLabelMin) return { category: 'nameplate', reason: 'text/plate ImageNet labels', scores };
  if (knownMachine) return { category: 'overview', reason: `machine type ${recognition.machineType} recognised`, scores };
  if (machineLabels >= o.vehicleLabelMin) return { category: 'overview', reason: 'machine/vehicle ImageNet labels', scores };
  if (recognition && cues.greyFraction >= o.greyFractionMin && cues.saturation <= o.saturationMax) {
    return { category: 'nameplate', reason: 'grey unsaturated close-up without machine evidence', scores };
  }
  if (recognition) return { category: 'other', reason: 'no machine evidence in recognition result', scores };
  return { category: 'overview', reason: 'no recognition result; assumed machine photo', scores };
}
