/**
 * The figures the project aims at (issue aims, restated where a bench measures them), collected
 * from the benches of one `npm run bench` run and printed together at its end, each beside its
 * aim and its ratio to the aim, so benches run side by side compare on one machine state.
 */
export interface AimFigure {
  figure: string;
  value: number;
  unit: string;
  aim: number;
  /** Whether a higher or a lower value is better (the aim is a floor or a ceiling). */
  better: 'higher' | 'lower';
}

const recorded: AimFigure[] = [];

/** Records a measured figure against its aim; returns the one-line verdict for the bench's own output. */
export function recordAim(f: AimFigure): string {
  recorded.push(f);
  return verdict(f);
}

export function verdict(f: AimFigure): string {
  const met = f.better === 'higher' ? f.value >= f.aim : f.value <= f.aim;
  return `${f.figure}: ${fmt(f.value)} ${f.unit} (aim ${f.better === 'higher' ? '≥' : '≤'} ${fmt(f.aim)}; ${(f.value / f.aim).toFixed(2)}× the aim, ${met ? 'met' : 'NOT met'})`;
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n >= 100 ? n.toFixed(0) : n.toFixed(2));

/** The run's figures as a markdown table (empty when no bench recorded any). */
export function aimsTable(): string {
  if (recorded.length === 0) return '';
  const lines = ['| figure | measured | aim | measured ÷ aim | met |', '|---|---|---|---|---|'];
  for (const f of recorded) {
    const met = f.better === 'higher' ? f.value >= f.aim : f.value <= f.aim;
    lines.push(`| ${f.figure} | ${fmt(f.value)} ${f.unit} | ${f.better === 'higher' ? '≥' : '≤'} ${fmt(f.aim)} ${f.unit} | ${(f.value / f.aim).toFixed(2)} | ${met ? 'yes' : 'no'} |`);
  }
  return lines.join('\n');
}
