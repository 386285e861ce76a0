import { z } from 'zod';

/** What the fleet (bench/fleet/subscribers.ts) and its subscriber process (subscriber-process.ts) say to each other. */
export const subscriberStatsSchema = z.object({
  received: z.number(),
  duplicates: z.number(),
  reconnects: z.number(),
  errors: z.number(),
  /** Subscribers (graphql-ws connections) connected now. */
  active: z.number(),
});
export type SubscriberStats = z.infer<typeof subscriberStatsSchema>;

export const toSubscribers = z.discriminatedUnion('type', [
    /** `watch`: per subscriber (one graphql-ws connection), the gateways it subscribes to (one subscription each). */
  z.object({ type: z.literal('start'), httpUrls: z.array(z.string().url()).min(1), token: z.string().min(1), watch: z.array(z.array(z.string().min(1)).min(1)) }),
  /** Report what arrived so far now (at a stage's end). */
  z.object({ type: z.literal('report') }),
  z.object({ type: z.literal('close') }),
]);
export type ToSubscribers = z.infer<typeof toSubscribers>;

export const fromSubscribers = z.object({
  /** `report` every 100 ms, `answer` to a `report` asked for, `closed` after `close`. */
  type: z.enum(['report', 'answer', 'closed']),
  /** [arrival (ms since the epoch), arrival − the event's `time` (ms)] since the last report. */
  samples: z.array(z.tuple([z.number(), z.number()])),
  stats: subscriberStatsSchema,
});
export type FromSubscribers = z.infer<typeof fromSubscribers>;
