import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { catalog, presenceSchema, type CommandType, type Presence } from '@tu/shared';
import { Dispatcher } from '@tu/agent/internal/orchestrator/dispatcher';

/**
 * A presence message as a handler instance retains it, validated like the orchestrator does when
 * one service handles all of `handles`. No service of today's catalogue handles two commands, so
 * an instance handling two (the dispatcher allows it) is built as it would parse.
 */
const presence = (...handles: CommandType[]): Presence => {
  const services = new Set(handles.map((h) => catalog[h].handler));
  const raw = { service: [...services][0] ?? 'svc-ai-vision-adapter', instanceId: 'x', status: 'online', handles, startedAt: new Date(0).toISOString(), pid: 1, host: 'h', version: '1' };
  return services.size <= 1 ? presenceSchema.parse(raw) : (raw as Presence);
};
const REC: CommandType = 'analysis.recognition.request';
const CMP: CommandType = 'analysis.comparison.request';
const META: CommandType = 'analysis.metadata.request';

const picks = (d: Dispatcher, type: CommandType, n: number) => Array.from({ length: n }, () => d.pick(type));

test('no instance, or none handling the type: undefined', () => {
  const d = new Dispatcher();
  assert.is(d.pick(REC), undefined);
  d.update('cmp-1', presence(CMP));
  assert.is(d.pick(REC), undefined);
  assert.is(d.pick(CMP), 'cmp-1');
});

test('only instances that handle the type are picked', () => {
  const d = new Dispatcher();
  d.update('rec-1', presence(REC));
  d.update('cmp-1', presence(CMP));
  d.update('both', presence(REC, CMP));
  const seen = new Set(picks(d, REC, 10));
  assert.equal([...seen].sort(), ['both', 'rec-1']);
  assert.equal([...new Set(picks(d, CMP, 10))].sort(), ['both', 'cmp-1']);
});

test('the instance with the fewest commands in flight wins', () => {
  const d = new Dispatcher();
  for (const id of ['a', 'b', 'c']) d.update(id, presence(REC));
  d.acquire('a');
  d.acquire('a');
  d.acquire('b');
  assert.equal(picks(d, REC, 5), ['c', 'c', 'c', 'c', 'c']);
  d.acquire('c');
  d.acquire('c');
  assert.is(d.pick(REC), 'b');
});

test('round-robin among equally loaded instances', () => {
  const d = new Dispatcher();
  for (const id of ['a', 'b', 'c']) d.update(id, presence(REC));
  assert.equal(picks(d, REC, 6), ['a', 'b', 'c', 'a', 'b', 'c']);
});

test('round-robin per type holds while picks of other types interleave', () => {
  const d = new Dispatcher();
  for (const id of ['a', 'b']) d.update(id, presence(REC, META));
  const rec: (string | undefined)[] = [];
  for (let i = 0; i < 6; i++) {
    rec.push(d.pick(REC));
    d.pick(META); // metadata runs beside recognition: its picks must not steer recognition's turn
  }
  assert.equal(rec, ['a', 'b', 'a', 'b', 'a', 'b']);
});

test('acquire / release count in-flight commands; release never goes below zero or fails on unknowns', () => {
  const d = new Dispatcher();
  d.update('a', presence(REC));
  d.acquire('a');
  d.acquire('a');
  assert.is(d.snapshot()[0]!.inflight, 2);
  d.release('a');
  d.release('a');
  d.release('a');
  assert.is(d.snapshot()[0]!.inflight, 0);
  d.release(undefined);
  d.release('gone');
  d.acquire('gone');
  assert.equal(d.snapshot().map((s) => s.instanceId), ['a']);
});

test('presence updates: added once, load kept across re-announcements, removal stops picks', () => {
  const d = new Dispatcher();
  assert.is(d.update('a', presence(REC)), 'added');
  assert.is(d.update('b', presence(REC)), 'added');
  d.acquire('a');
  assert.is(d.update('a', presence(REC, CMP)), 'unchanged', 're-announcing is not a new instance');
  assert.is(d.snapshot().find((s) => s.instanceId === 'a')!.inflight, 1, 'the load survives a re-announcement');
  assert.is(d.pick(CMP), 'a', 'the new handles count');
  assert.is(d.update('b', null), 'removed');
  assert.is(d.update('b', null), 'unchanged');
  assert.not.ok(d.has('b'));
  assert.equal(picks(d, REC, 3), ['a', 'a', 'a']);
  assert.is(d.update('a', null), 'removed');
  assert.is(d.pick(REC), undefined);
});

test.run();
