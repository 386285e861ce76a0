/**
 * The machine types a technician may choose on the gateway, plus `negative`: "no machine on
 * this photo" (the head's negative class, agent/src/services/vision/head.ts). Plain data with
 * no imports, so the technician UI (agent/ui/src/components/Teach.tsx) bundles this list instead of a copy;
 * the zod schema is in schemas/teach.ts.
 */
export const MACHINE_TYPES = [
  'excavator',
  'wheel_loader',
  'dump_truck',
  'bulldozer',
  'backhoe_loader',
  'crane',
  'forklift',
  'telehandler',
  'tractor',
  'roller',
  'grader',
  'aerial_lift',
  'skid_steer',
] as const;
export const NEGATIVE_LABEL = 'negative';
export const TEACH_LABELS = [...MACHINE_TYPES, NEGATIVE_LABEL] as const;
export type TeachLabel = (typeof TEACH_LABELS)[number];
