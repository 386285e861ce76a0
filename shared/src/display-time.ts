/**
 * An instant as both web UIs show it, in the viewer's time zone and naming it ("6:13:11 PM CET"):
 * the clock time alone when it is today, with the date otherwise ("6:13:11 PM" of an analysis
 * from last week, or "until 06:13" of a token that expires tomorrow, would read as today). Every
 * time the technician UI and the dashboard show goes through here. The zone is named because a
 * photo's capture time names its own (agent/ui/src/format.ts captureText) and the dashboard
 * shows gateways in other zones than its viewer's: an unnamed time next to them reads as theirs.
 * `seconds: false` for coarse times (a token's expiry); `now` for tests.
 */
export function when(at: string | number | Date, o: { seconds?: boolean; now?: Date } = {}): string {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return String(at);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', timeZoneName: 'short', ...(o.seconds === false ? {} : { second: '2-digit' }) });
  if (d.toDateString() === (o.now ?? new Date()).toDateString()) return time;
  return `${d.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' })}, ${time}`;
}
