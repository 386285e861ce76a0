/**
 * Numbers as both web UIs show them (the technician UI's agent/ui/src/format.ts and the
 * dashboard's relay/ui/src/format.ts), one rule beside the one for times (display-time.ts).
 */

const formats = new Map<number, Intl.NumberFormat>();

/**
 * A number grouped and with the decimal mark of the viewer's locale ("100,000", "1.5"; "1,5" in a
 * German browser): "100000 events" made a reader count digits, and "1234" reads as a code or a
 * year. `digits`: the fixed number of decimals (0, for counts). One formatter per `digits`.
 */
export function num(n: number, digits = 0): string {
  let f = formats.get(digits);
  if (!f) formats.set(digits, (f = new Intl.NumberFormat(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits })));
  return f.format(n);
}

/**
 * A share (0..1) as a percentage, "71 %": whole numbers, except that a share short of all (or
 * above none) never shows as 100 % (or 0 %), which would claim a certainty the number does not
 * have (1,234 confirmed of 1,235 read "100 % accuracy", as if the gateway had never been wrong).
 * Those get one decimal, cut towards the truth ("99.9 %", "0.4 %"), or a bound ("< 0.1 %").
 */
export function percent(share: number): string {
  const p = share * 100;
  const whole = Math.round(p);
  if (whole === 100 && p < 100) return `${num(Math.floor(p * 10) / 10, 1)} %`;
  if (whole === 0 && p > 0) return p < 0.1 ? `< ${num(0.1, 1)} %` : `${num(Math.floor(p * 10) / 10, 1)} %`;
  return `${num(whole)} %`;
}
