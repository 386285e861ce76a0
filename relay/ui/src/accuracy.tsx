import { useEffect, useState } from 'preact/hooks';
import * as z from 'zod/mini';
import { Cell } from './components/Cell';
import { clause, count, percent, typeName, when } from './format';
import type { Query } from './graphql';
import type { Failure } from './state';

/** One row of the relay's `typeAccuracy` query (relay/src/graphql/schema.ts TypeAccuracy). */
const typeAccuracy = z.object({ machineType: z.string(), confirmed: z.number(), correctedAway: z.number(), correctedTo: z.number(), accuracy: z.nullable(z.number()) });
type TypeAccuracy = z.infer<typeof typeAccuracy>;

/**
 * The count columns with what each means: under the name in the header, and beside each number
 * at phone width, where each row is a card and the header is not shown (Cell.tsx).
 */
const COLUMNS = [
  ['Confirmed', 'gateway said this type, technician agreed'],
  ['Corrected away', 'gateway said this type, technician chose another'],
  ['Corrected to', 'technician chose this type, gateway said another'],
  ['Accuracy', 'confirmed ÷ (confirmed + corrected away)'],
] as const;
const named = (i: 0 | 1 | 2 | 3): string => `${COLUMNS[i][0]}: ${COLUMNS[i][1]}`;

/** The explanation under each column name: normal weight, so the number's name stands out. */
const NOTE = { fontWeight: 400 };

/*
 * `unknown` is the gateway abstaining, not a type it said: on a photo without a machine that is
 * the right answer, on a photo of a machine a miss, and the relay's typeAccuracy counts both as
 * "corrected away" (and the technician's "no machine" as "corrected to" negative) without saying
 * which. So the unknown row gets no percentage (one would count right abstentions as wrong), and
 * "no machine" without labels of its own is not said to be never answered when the gateway
 * abstained on labelled photos. Splitting them needs the relay to count unknown → negative apart
 * (not in the GraphQL API). The cells stay short (a table row at phone width grows with its
 * longest cell); the why is below the table.
 */
function AccuracyCell({ r, abstained }: { r: TypeAccuracy; abstained: number }) {
  if (r.machineType === 'unknown') return <Cell label={named(3)}>no percentage (abstentions: see below the table)</Cell>;
  if (r.accuracy !== null) return <Cell label={named(3)}>{percent(r.accuracy)}</Cell>;
  if (r.machineType === 'negative' && abstained > 0) return <Cell label={named(3)}>— (not said by the gateway on a labelled photo; see below the table)</Cell>;
  return <Cell label={named(3)}>— (the gateway never said this type on a labelled photo)</Cell>;
}

/** Why the abstention rows read as they do (see AccuracyCell). */
function AbstentionNotes({ rows }: { rows: TypeAccuracy[] }) {
  const unknown = rows.find((r) => r.machineType === 'unknown');
  const negative = rows.find((r) => r.machineType === 'negative');
  if (!unknown || unknown.correctedAway === 0) return null;
  const n = unknown.correctedAway;
  const photos = `${count(n)} labelled photo${n === 1 ? '' : 's'}`;
  return (
    <ul class="muted" data-testid="accuracy-notes">
      <li>
        <strong>unknown (gateway abstained)</strong> has no accuracy: the gateway named no type. Abstaining is the right answer on a photo without a machine and a miss on a
        photo of one; the relay counts {n === 1 ? 'the one labelled photo' : `all ${photos}`} it abstained on as "corrected away" and does not say how many a technician labelled "no machine", so no percentage is
        shown rather than a wrong one.
      </li>
      {negative && negative.correctedTo > 0 && (
        <li>
          <strong>no machine</strong>: the gateway abstained on {photos} instead of saying "no machine"; those a technician labelled "no machine" are in its "corrected to",
          although abstaining was right there.
        </li>
      )}
    </ul>
  );
}

/**
 * "Real-world accuracy": per machine type, what technicians said about the gateways'
 * recognitions (issue 13 part 4). Reloads every 5 s and shortly after a label arrives
 * (`refresh` changes; the relay fans an event out before it stores it). When a reload fails,
 * the table is marked with the time of its last good load.
 */
export function AccuracyPanel({ query, refresh, error, onLoaded, onError }: { query: Query; refresh: number; error: Failure | undefined; onLoaded: () => void; onError: (err: unknown) => void }) {
  const [loaded, setLoaded] = useState<{ rows: TypeAccuracy[]; at: number }>();
  useEffect(() => {
    const load = () =>
      query('query { typeAccuracy { machineType confirmed correctedAway correctedTo accuracy } }', {}, (d) => {
        const r = z.array(typeAccuracy).safeParse(d['typeAccuracy']);
        return r.success ? r.data : [];
      })
        .then((rows) => {
          setLoaded({ rows, at: Date.now() });
          onLoaded();
        })
        .catch(onError);
    const first = setTimeout(() => void load(), refresh === 0 ? 0 : 400);
    const i = setInterval(() => void load(), 5000);
    return () => {
      clearTimeout(first);
      clearInterval(i);
    };
  }, [refresh]);
  const rows = loaded?.rows;
  const abstained = rows?.find((r) => r.machineType === 'unknown')?.correctedAway ?? 0;
  return (
    <section aria-labelledby="acc-h">
      <h2 id="acc-h">Real-world accuracy</h2>
      <p class="muted">
        Judged by technicians on the gateways, who confirmed or corrected the recognised machine type of a photo (only each photo's latest label counts; unlabelled photos are not
        counted).
      </p>
      {error && <p class="bad-text">{loaded ? `As of ${when(loaded.at)}: reloading failed (${clause(error.message)}).` : `Not loaded (${clause(error.message)}).`}</p>}
      {/* Outside the scrolling table: at phone width a full-width cell of a table wider than the screen is cut off. */}
      {rows && rows.length === 0 && <p class="muted" data-testid="accuracy-empty">No technician has confirmed or corrected a recognition yet.</p>}
      {rows && rows.length > 0 && (
        <div class="table-wrap" role="region" aria-label="Real-world accuracy table" tabIndex={0}>
          <table class="cards wide-names" data-testid="accuracy-table">
            <thead>
              <tr>
                <th scope="col">Machine type</th>
                {COLUMNS.map(([name, meaning]) => (
                  <th key={name} scope="col">{name}<br /><span class="muted" style={NOTE}>{meaning}</span></th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.machineType} data-type={r.machineType}>
                  <th scope="row">{typeName(r.machineType)}</th>
                  <Cell label={named(0)}>{count(r.confirmed)}</Cell>
                  <Cell label={named(1)}>{count(r.correctedAway)}{r.machineType === 'unknown' && r.correctedAway > 0 && <><br /><span class="muted" style={NOTE}>abstained, technician chose a type or "no machine"</span></>}</Cell>
                  <Cell label={named(2)}>{count(r.correctedTo)}</Cell>
                  <AccuracyCell r={r} abstained={abstained} />
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {rows && <AbstentionNotes rows={rows} />}
    </section>
  );
}
