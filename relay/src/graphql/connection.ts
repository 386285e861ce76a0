import type { Page } from '../storage/types.js';

export const DEFAULT_PAGE = 20;
export const MAX_PAGE = 100;
/** recentEvents without `first`. */
export const RECENT_EVENTS_DEFAULT = 50;

/**
 * How many rows a field returns when the query gives no `first`: the one rule the resolvers, the
 * cost limit (limits.ts) and the refusals (args.ts) all read.
 */
export const defaultPageOf = (field: string): number => (field === 'recentEvents' ? RECENT_EVENTS_DEFAULT : DEFAULT_PAGE);

/** `first` as args.ts checked it (1..MAX_PAGE; anything else is refused there), else the default. */
export const pageSize = (first: number | null | undefined): number => first ?? DEFAULT_PAGE;

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  nodes: T[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export function connection<T>(p: Page<T>, cursor: (t: T) => string): Connection<T> {
  const edges = p.items.map((node) => ({ cursor: cursor(node), node }));
  return { edges, nodes: p.items, pageInfo: { hasNextPage: p.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
}
