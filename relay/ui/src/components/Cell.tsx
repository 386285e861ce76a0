import type { ComponentChildren } from 'preact';

/**
 * A cell of a table shown as cards at phone width (class `cards`, main.tsx): there each row is a
 * card and each cell a line named by `label` (its column), its content in one box beside the name.
 * Eight or five columns in 351 px put the last ones out of sight, reachable only by scrolling the
 * table sideways, with nothing saying so.
 */
export function Cell({ label, testid, children }: { label: string; testid?: string; children: ComponentChildren }) {
  return (
    <td data-label={label} data-testid={testid}>
      <div>{children}</div>
    </td>
  );
}
