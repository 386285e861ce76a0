/**
 * What the benches watch on a real agent's bus, as an observer (it may subscribe to events and
 * nothing else): when each analysis ended, and each step's handler-measured compute time.
 */
import { stepOfEvent, type AnyEvent, type BusClient } from '@tu/shared';
import { connectObserver, type Agent } from '@tu/agent';

/** Per analysis: step name → the step event's durationMs (the handler's own measure). */
export type StepTimes = Map<string, Map<string, number>>;

export interface Watch {
  bus: BusClient;
  ended: Map<string, { event: AnyEvent; at: number }>;
  compute: StepTimes;
}

/**
 * `steps: false` watches only the terminal events: the observer runs on the agent's main thread,
 * and a bench measuring that thread's event loop should add as little to it as it can.
 */
export async function watchAnalyses(agent: Agent, opts: { steps?: boolean } = {}): Promise<Watch> {
  const bus = await connectObserver(agent.busIdentity, 'bench');
  const ended = new Map<string, { event: AnyEvent; at: number }>();
  const compute: StepTimes = new Map();
  await bus.onEvents(opts.steps === false ? ['analysis.completed', 'analysis.failed'] : 'all', (e) => {
    if (e.type === 'analysis.completed' || e.type === 'analysis.failed') ended.set(e.subject, { event: e, at: performance.now() });
    const step = stepOfEvent(e.type);
    if (step?.outcome === 'completed') {
      let m = compute.get(e.subject);
      if (!m) compute.set(e.subject, (m = new Map()));
      m.set(step.step, (e.data as { durationMs: number }).durationMs);
    }
  });
  return { bus, ended, compute };
}
