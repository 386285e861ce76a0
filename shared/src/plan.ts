import type { StepName } from './schemas/common.js';

/**
 * An analysis plan is data: the steps that run and what each needs. The orchestrator starts
 * every step whose needs have completed (agent/src/orchestrator/orchestrator.ts), so steps that
 * need nothing of each other run side by side. The configuration holds the plan
 * (firmware-config/src/schema.ts `orchestrator.plan`); this module is the one place that
 * decides whether a plan is sound.
 */
export interface PlanNode {
  step: StepName;
  /** Steps whose results this one reads (its command's `previous`); it starts once they completed. */
  needs: readonly StepName[];
  /** The analysis completes without this step when it fails (the failure is reported in its summary). */
  optional: boolean;
}

/** A problem with a plan, at a path relative to the plan's entries (`[step, 'needs']`). */
export interface PlanIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Every problem of a plan, each naming the entry and field it is in:
 * - a step appears twice;
 * - a step needs one that is not in the plan (unknown, or dropped from the steps that run);
 * - the needs form a cycle (named step by step);
 * - an optional step is needed by another: its failure would leave that step without input,
 *   so it cannot be optional (make the step that needs it optional as well, or drop the need).
 */
export function planIssues(nodes: readonly PlanNode[]): PlanIssue[] {
  const issues: PlanIssue[] = [];
  const byStep = new Map<StepName, PlanNode>();
  for (const n of nodes) {
    if (byStep.has(n.step)) issues.push({ path: [n.step], message: `step ${n.step} appears twice in the plan` });
    byStep.set(n.step, n);
  }
  for (const n of nodes) {
    n.needs.forEach((need, i) => {
      const dep = byStep.get(need);
      if (need === n.step) issues.push({ path: [n.step, 'needs', i], message: `${n.step} cannot need itself` });
      else if (!dep) issues.push({ path: [n.step, 'needs', i], message: `${n.step} needs ${need}, which is not a step of the plan (add it to the steps that run, or drop the need)` });
      else if (dep.optional && !n.optional) issues.push({ path: [need, 'optional'], message: `${need} is optional but ${n.step} needs it: a step others need cannot be optional unless they are too` });
    });
  }
  const cycle = findCycle(nodes, byStep);
  if (cycle) issues.push({ path: [cycle[0]!, 'needs'], message: `the plan's needs form a cycle: ${cycle.join(' → ')}` });
  return issues;
}

/** A cycle as a list of steps (first repeated last), or undefined. Depth-first, in plan order. */
function findCycle(nodes: readonly PlanNode[], byStep: Map<StepName, PlanNode>): StepName[] | undefined {
  const state = new Map<StepName, 'visiting' | 'done'>();
  const path: StepName[] = [];
  const visit = (step: StepName): StepName[] | undefined => {
    if (state.get(step) === 'done') return undefined;
    if (state.get(step) === 'visiting') return [...path.slice(path.indexOf(step)), step];
    state.set(step, 'visiting');
    path.push(step);
    for (const need of byStep.get(step)?.needs ?? []) {
      const found = byStep.has(need) && need !== step ? visit(need) : undefined;
      if (found) return found;
    }
    path.pop();
    state.set(step, 'done');
    return undefined;
  };
  for (const n of nodes) {
    const found = visit(n.step);
    if (found) return found;
  }
  return undefined;
}

/**
 * The plan's steps in an order where each comes after everything it needs, otherwise in the
 * given order (so a summary lists steps in the order a reader expects). Assumes no issues.
 */
export function planOrder<T extends PlanNode>(nodes: readonly T[]): T[] {
  const out: T[] = [];
  const placed = new Set<StepName>();
  const rest = [...nodes];
  while (rest.length > 0) {
    const i = rest.findIndex((n) => n.needs.every((d) => placed.has(d)));
    if (i < 0) throw new Error(`plan has a cycle among ${rest.map((n) => n.step).join(', ')}`);
    const [n] = rest.splice(i, 1);
    out.push(n!);
    placed.add(n!.step);
  }
  return out;
}
