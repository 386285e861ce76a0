import type { Analysis } from '../graphql';
import { cutShortSteps } from '../format';

/** The steps the end of an analysis cut short, on their own line under it (format.ts cutShortSteps); nothing when none was. */
export function CutShort({ a }: { a: Analysis }) {
  const text = cutShortSteps(a.status, a.steps);
  return text ? <div class="muted" data-testid="cut-short-steps">Not finished: {text}</div> : null;
}
