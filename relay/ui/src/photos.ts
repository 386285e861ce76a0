/**
 * What the dashboard knows about the photo of each analysis it has seen: when its analysis
 * started and the file name the technician uploaded, so a recognition or a history line can be
 * matched with the technician's photos. The relay's Machine.lastRecognition carries neither, and
 * its Analysis carries no file name: both come from the loaded analyses and the feed's events
 * (tu.image.uploaded has `fileName`, analysis.started its time), so an analysis older than both
 * has no time or name here, and the UI says so rather than guess. Likewise why the gateway
 * abstained (the recognition's `unknownReason`), which Machine.lastRecognition does not carry: it
 * comes from the analysis' results, in the feed's analysis.completed or the loaded analyses.
 */
import * as z from 'zod/mini';
import { unknownReasonOf } from './format';
import type { Analysis, FeedEvent } from './graphql';

export interface Photo {
  /** When the analysis started (ISO), as the machine history shows it. */
  startedAt?: string;
  fileName?: string;
  /** Why the gateway named no type for this photo (its own words), when it abstained. */
  unknownReason?: string;
}
export type Photos = ReadonlyMap<string, Photo>;

const uploaded = z.object({ fileName: z.string() });
const completed = z.object({ results: z.unknown() });

export function photosOf(feed: FeedEvent[], analyses: Analysis[] = []): Photos {
  const out = new Map<string, Photo>();
  const at = (id: string): Photo => {
    let p = out.get(id);
    if (!p) out.set(id, (p = {}));
    return p;
  };
  for (const e of feed) {
    if (e.type === 'analysis.started') at(e.analysisId).startedAt ??= e.time;
    if (e.type === 'tu.image.uploaded') {
      const u = uploaded.safeParse(e.data);
      if (u.success) at(e.analysisId).fileName = u.data.fileName;
    }
    if (e.type === 'analysis.completed') {
      const c = completed.safeParse(e.data);
      const why = c.success ? unknownReasonOf(c.data.results) : undefined;
      if (why) at(e.analysisId).unknownReason = why;
    }
  }
  // The stored analysis' own start time wins over its event's.
  for (const a of analyses) {
    if (a.startedAt) at(a.id).startedAt = a.startedAt;
    const why = unknownReasonOf(a.results);
    if (why) at(a.id).unknownReason = why;
  }
  return out;
}
