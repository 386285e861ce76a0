import { useEffect, useState } from 'preact/hooks';
import * as z from 'zod/mini';
import { typeName } from './format';
import type { Query } from './graphql';

/** One row of the relay's `typeAccuracy` query (relay/src/graphql/schema.ts TypeAccuracy). */
const typeAccuracy = z.object({ machineType: z.string(), confirmed: z.number(), correctedAway: z.number(), correctedTo: z.number(), accuracy: z.nullable(z.number()) });
type TypeAccuracy = z.infer<typeof typeAccuracy>;

/** The explanation under each column name: normal weight, so the number's name stands out. */
const NOTE = { fontWeight: 400 };

/**
 * "Real-world accuracy": per machine type, what technicians said about the gateways'
 * recognitions (issue 13 part 4). Reloads every 5 s and shortly after a label arrives
 * (`refresh` changes; the relay fans an event out before it stores it).
 */
export function AccuracyPanel({ query, refresh, onError }: { query: Query; refresh: number; onError: (err: unknown) => void }) {
  const [rows, setRows] = useState<TypeAccuracy[]>();
  useEffect(() => {
    const load = () =>
      query('query { typeAccuracy { machineType confirmed correctedAway correctedTo accuracy } }', {}, (d) => {
        const r = z.array(typeAccuracy).safeParse(d['typeAccuracy']);
        return r.success ? r.data : [];
      })
        .then(setRows)
        .catch(onError);
    const first = setTimeout(() => void load(), refresh === 0 ? 0 : 400);
    const i = setInterval(() => void load(), 5000);
    return () => {
      clearTimeout(first);
      clearInterval(i);
    };
  }, [refresh]);
  return (
    <section aria-labelledby="acc-h">
      <h2 id="acc-h">Real-world accuracy</h2>
      <p class="muted">
        Judged by technicians on the gateways, who confirmed or corrected the recognised machine type of a photo (only each photo's latest label counts; unlabelled photos are not
        counted).
      </p>
      <div class="table-wrap" role="region" aria-label="Real-world accuracy table" tabIndex={0}>
        <table data-testid="accuracy-table">
          <thead>
            <tr>
              <th scope="col">Machine type</th>
              <th scope="col">Confirmed<br /><span class="muted" style={NOTE}>gateway said this type, technician agreed</span></th>
              <th scope="col">Corrected away<br /><span class="muted" style={NOTE}>gateway said this type, technician chose another</span></th>
              <th scope="col">Corrected to<br /><span class="muted" style={NOTE}>technician chose this type, gateway said another</span></th>
              <th scope="col">Accuracy<br /><span class="muted" style={NOTE}>confirmed ÷ (confirmed + corrected away)</span></th>
            </tr>
          </thead>
          <tbody>
            {(rows ?? []).map((r) => (
              <tr key={r.machineType} data-type={r.machineType}>
                <th scope="row">{typeName(r.machineType)}</th>
                <td>{r.confirmed}</td>
                <td>{r.correctedAway}</td>
                <td>{r.correctedTo}</td>
                <td>{r.accuracy === null ? '— (the gateway never said this type)' : `${Math.round(r.accuracy * 100)} %`}</td>
              </tr>
            ))}
            {rows && rows.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">No technician has confirmed or corrected a recognition yet.</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
