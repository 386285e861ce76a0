import * as z from 'zod/mini';
import { count, positionText, shortId, when } from '../format';
import { positionSchema, type Analysis, type Machine, type Position } from '../graphql';

/** The GPS position an analysis' photo carried (its metadata record, shared/src/schemas/results.ts), if any. */
const positionOf = (results: unknown): Position | undefined => {
  const r = z.object({ metadata: z.object({ record: z.object({ lastPosition: positionSchema }) }) }).safeParse(results);
  return r.success ? r.data.metadata.record.lastPosition : undefined;
};
const same = (a: Position, b: Position): boolean => a.latitude === b.latitude && a.longitude === b.longitude;

/**
 * Where the machine was last known to be, and from which photo. The relay keeps a machine's
 * position when a newer photo carries none (relay/src/storage/sql-storage.ts, `coalesce`), and its
 * Machine.lastPosition says neither when nor from which photo: beside "Last seen" an older
 * position read as where the machine was then. The photo is found among the listed analyses
 * (`sorted`: newest start first) by its position; when it is not listed, the line says its time is unknown here.
 */
export function LastPosition({ m, sorted }: { m: Machine; sorted: Analysis[] }) {
  const p = m.lastPosition;
  if (!p) return <span class="muted">none (no photo of this machine carried a GPS position)</span>;
  const completed = sorted.filter((a) => a.status === 'completed');
  const from = completed.findIndex((a) => {
    const q = positionOf(a.results);
    return q !== undefined && same(q, p);
  });
  const a = completed[from];
  return (
    <span data-testid="last-position">
      {positionText(p)}
      <br />
      {!a ? (
        <span class="bad-text">from a photo not among the analyses listed below: when it was taken is not known here, so the machine may have moved since</span>
      ) : from === 0 ? (
        <span class="muted">
          from the latest photo (analysis <code>{shortId(a.id)}</code>{a.startedAt && <>, started <time dateTime={a.startedAt}>{when(a.startedAt)}</time></>})
        </span>
      ) : (
        <span class="bad-text">
          from an older photo (analysis <code>{shortId(a.id)}</code>{a.startedAt && <>, started <time dateTime={a.startedAt}>{when(a.startedAt)}</time></>}): the {count(from)} newer
          photo{from === 1 ? '' : 's'} carried no GPS position, so the machine may have moved since
        </span>
      )}
    </span>
  );
}
