/**
 * Maps ImageNet classes that correspond to machine types. Works by label name
 * so it is independent of the label order (MobileNet uses the standard order,
 * Tiny Darknet its own). 'crane' appears twice in ImageNet-1k: the first
 * occurrence is the bird (standard 134, darknet 428), the second the machine
 * (standard 517, darknet 544).
 */
export interface ImagenetMachineRule {
  /** First synonym of the ImageNet label (text before the first comma). */
  name: string;
  /** 0-based occurrence of that name in the label list. */
  occurrence: number;
  machineType: string;
}

export const IMAGENET_MACHINE_RULES: readonly ImagenetMachineRule[] = [
  { name: 'forklift', occurrence: 0, machineType: 'forklift' },
  { name: 'crane', occurrence: 1, machineType: 'crane' },
  { name: 'tractor', occurrence: 0, machineType: 'tractor' },
];

export function firstSynonym(label: string): string {
  return (label.split(',')[0] ?? label).trim().toLowerCase();
}

/** label index → machine type, for the given label list. */
export function buildImagenetMachineMap(
  labels: readonly string[],
  rules: readonly ImagenetMachineRule[] = IMAGENET_MACHINE_RULES,
): Map<number, string> {
  const seen = new Map<string, number>();
  const out = new Map<number, string>();
  labels.forEach((label, index) => {
    const name = firstSynonym(label);
    const occ = seen.get(name) ?? 0;
    seen.set(name, occ + 1);
    for (const r of rules) if (r.name === name && r.occurrence === occ) out.set(index, r.machineType);
  });
  return out;
}
