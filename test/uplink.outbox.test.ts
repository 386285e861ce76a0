import path from 'node:path';
import Database from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, silentLogger } from '@tu/shared';
import { Outbox, type OutboxOptions } from '@tu/agent';
import { tmpDir } from './support/harness.js';

const open = (over: Partial<OutboxOptions> = {}, file = path.join(tmpDir('tu-outbox-'), 'outbox.sqlite')) =>
  Outbox.open({
    file,
    durability: 'full',
    maxEvents: 1000,
    maxBytes: 1024 * 1024,
    maxAgeMs: 60_000,
    whenFull: 'drop-oldest',
    clock: over.clock ?? new ManualClock(),
    logger: silentLogger(),
    ...over,
  });

const ev = (i: number) => ({ id: `e${i}`, type: 'analysis.started' });
const body = (i: number, pad = 0) => JSON.stringify({ id: `e${i}`, pad: 'x'.repeat(pad) });
const ids = (ob: Outbox, n = 10_000) => ob.peek(0, n).map((r) => r.id);

test('append, peek in order (committed rows only), ack deletes; survives reopen', async () => {
  const file = path.join(tmpDir('tu-outbox-'), 'outbox.sqlite');
  let ob = await open({}, file);
  const seqs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = ob.append(ev(i), body(i));
    assert.ok(r.accepted);
    if (r.accepted) seqs.push(r.seq);
  }
  assert.equal(ob.peek(0, 10), [], 'nothing handed out before the commit');
  await ob.flush();
  assert.equal(ids(ob), ['e0', 'e1', 'e2', 'e3', 'e4']);
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'monotonic seq');
  assert.equal(ob.peek(seqs[1]!, 2).map((r) => r.id), ['e2', 'e3'], 'peek after a cursor, limited');
  ob.ack(seqs[0]!);
  ob.ack(seqs[2]!); // out of order: the head stays until e1 is acked
  assert.is(ob.stats.depth, 3);
  assert.equal(ids(ob), ['e1', 'e3', 'e4']);
  await ob.close();
  ob = await open({}, file);
  assert.equal(ids(ob), ['e1', 'e3', 'e4'], 'acked rows stay deleted after reopening');
  assert.is(ob.stats.delivered, 2, 'counters are persisted');
  const r = ob.append(ev(5), body(5));
  assert.ok(r.accepted && r.seq > seqs[4]!, 'seq keeps increasing after a restart');
  await ob.close();
});

test('undeliveredSubjects: the analyses with an event not yet delivered, before and after the commit, after delivery and after a restart', async () => {
  const file = path.join(tmpDir('tu-outbox-'), 'outbox.sqlite');
  let ob = await open({}, file);
  const seqs: number[] = [];
  for (const [i, subject] of ['a1', 'a1', 'a2', 'a3'].entries()) {
    const r = ob.append({ ...ev(i), subject }, JSON.stringify({ id: `e${i}`, subject }));
    if (r.accepted) seqs.push(r.seq);
  }
  assert.equal([...ob.undeliveredSubjects()].sort(), ['a1', 'a2', 'a3'], 'not yet committed: still needed');
  await ob.flush();
  ob.ack(seqs[0]!);
  assert.equal([...ob.undeliveredSubjects()].sort(), ['a1', 'a2', 'a3'], 'a1 has one event left');
  ob.ack(seqs[1]!);
  assert.equal([...ob.undeliveredSubjects()].sort(), ['a2', 'a3'], 'every event of a1 delivered');
  await ob.close();
  ob = await open({}, file);
  assert.equal([...ob.undeliveredSubjects()].sort(), ['a2', 'a3'], 'read back from disk at start');
  await ob.close();
});

test('maxEvents with drop-oldest: oldest undelivered dropped and counted', async () => {
  const ob = await open({ maxEvents: 3 });
  for (let i = 0; i < 5; i++) ob.append(ev(i), body(i));
  await ob.flush();
  assert.equal(ids(ob), ['e2', 'e3', 'e4']);
  assert.is(ob.stats.dropped, 2);
  assert.is(ob.stats.refused, 0);
  assert.ok(ob.stats.full);
  await ob.close();
});

test('maxEvents with refuse-new: backlog kept, new events refused and counted', async () => {
  const ob = await open({ maxEvents: 3, whenFull: 'refuse-new' });
  const accepted = [0, 1, 2, 3, 4].map((i) => ob.append(ev(i), body(i)).accepted);
  assert.equal(accepted, [true, true, true, false, false]);
  await ob.flush();
  assert.equal(ids(ob), ['e0', 'e1', 'e2']);
  assert.is(ob.stats.refused, 2);
  assert.is(ob.stats.dropped, 0);
  // Delivering one makes room again.
  ob.ack(ob.peek(0, 1)[0]!.seq);
  assert.ok(ob.append(ev(5), body(5)).accepted);
  await ob.flush();
  assert.equal(ids(ob), ['e1', 'e2', 'e5']);
  await ob.close();
});

test('maxBytes: both policies; an event larger than maxBytes is always refused', async () => {
  const drop = await open({ maxBytes: 2048 });
  for (let i = 0; i < 6; i++) drop.append(ev(i), body(i, 600));
  await drop.flush();
  assert.ok(drop.stats.bytes <= 2048, `bytes ${drop.stats.bytes}`);
  assert.equal(ids(drop), ['e3', 'e4', 'e5']);
  assert.is(drop.stats.dropped, 3);
  assert.not.ok(drop.append(ev(9), body(9, 5000)).accepted);
  assert.is(drop.stats.refused, 1);
  await drop.close();
  const refuse = await open({ maxBytes: 2048, whenFull: 'refuse-new' });
  for (let i = 0; i < 6; i++) refuse.append(ev(i), body(i, 600));
  await refuse.flush();
  assert.equal(ids(refuse), ['e0', 'e1', 'e2']);
  assert.is(refuse.stats.refused, 3);
  await refuse.close();
});

test('maxAgeMs: undelivered events expire on the clock, counted apart from drops', async () => {
  const clock = new ManualClock();
  const ob = await open({ clock, maxAgeMs: 10_000 });
  ob.append(ev(0), body(0));
  clock.advance(4000);
  ob.append(ev(1), body(1));
  await ob.flush();
  clock.advance(6500); // e0 is 10.5 s old, e1 6.5 s
  await ob.flush();
  assert.equal(ids(ob), ['e1']);
  assert.is(ob.stats.expired, 1);
  assert.is(ob.stats.oldestAgeMs, 6500);
  clock.advance(5000);
  await ob.flush();
  assert.equal(ids(ob), []);
  assert.is(ob.stats.expired, 2);
  assert.is(ob.stats.dropped, 0);
  await ob.close();
});

test('maxAgeMs: the wall clock being set (a gateway booted with its clock years off, then NTP) expires nothing; the age counts the time the outbox ran, over restarts', async () => {
  const dir = tmpDir('tu-outbox-age-');
  const file = path.join(dir, 'outbox.sqlite');
  // Booted after a power cut with no real-time clock: the wall clock says 1970.
  const clock = new ManualClock(Date.UTC(1970, 0, 1));
  const ob = await open({ clock, maxAgeMs: 10_000, file });
  ob.append(ev(0), body(0));
  clock.advance(4000);
  ob.append(ev(1), body(1));
  await ob.flush();
  // NTP reaches the gateway: the wall clock jumps 56 years ahead. No time has passed.
  clock.setWall(Date.UTC(2026, 10, 30));
  ob.expireNow();
  await ob.flush();
  assert.equal(ids(ob), ['e0', 'e1'], 'nothing expired by the jump');
  assert.is(ob.stats.oldestAgeMs, 4000);
  assert.is(ob.stats.expired, 0);
  // And back (a clock set wrongly, then corrected): still nothing.
  clock.setWall(Date.UTC(2001, 0, 1));
  clock.advance(3000); // e0 7 s old, e1 3 s
  assert.equal(ids(ob), ['e0', 'e1']);
  await ob.close();
  // Restart (a new process: its monotonic clock starts again), the wall clock off again.
  const clock2 = new ManualClock(Date.UTC(1970, 0, 1));
  const again = await open({ clock: clock2, maxAgeMs: 10_000, file });
  assert.is(again.stats.oldestAgeMs, 7000, 'the age carried over the restart');
  clock2.advance(3500); // e0 10.5 s old: expired; e1 6.5 s
  await again.flush();
  assert.equal(ids(again), ['e1']);
  assert.is(again.stats.expired, 1);
  await again.close();
});

test('an outbox written before it kept its own clock: its rows count as queued at the first start, never expired by the old wall-clock stamps', async () => {
  const dir = tmpDir('tu-outbox-old-');
  const file = path.join(dir, 'outbox.sqlite');
  const db = new Database(file);
  db.exec('CREATE TABLE outbox (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, payload TEXT NOT NULL, bytes INTEGER NOT NULL, enqueued_at INTEGER NOT NULL); CREATE TABLE outbox_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);');
  // Stamped by a wall clock 3 years behind the one the gateway now has.
  db.prepare('INSERT INTO outbox (seq, id, type, payload, bytes, enqueued_at) VALUES (1, ?, ?, ?, ?, ?)').run('e0', 'analysis.started', body(0), body(0).length, Date.UTC(2023, 0, 1));
  db.close();
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const ob = await open({ clock, maxAgeMs: 10_000, file });
  assert.equal(ids(ob), ['e0']);
  assert.is(ob.stats.oldestAgeMs, 0);
  clock.advance(10_001);
  await ob.flush();
  assert.equal(ids(ob), [], 'expires maxAgeMs after the first start');
  await ob.close();
});

const tooLarge = (limitBytes: number) => ({ limitBytes, limitBy: 'relay' as const, reason: `over the ${limitBytes} bytes the relay accepts` });

test('setAside: a row the relay would refuse leaves the queue whole, with why, in the same file; survives reopen; requeue puts it back at the tail', async () => {
  const file = path.join(tmpDir('tu-outbox-aside-'), 'outbox.sqlite');
  let ob = await open({}, file);
  for (let i = 0; i < 4; i++) ob.append(ev(i), body(i, i === 1 ? 3000 : 0));
  await ob.flush();
  const rows = ob.peek(0, 10);
  // Not the head: e0 is still in flight when the pump meets e1.
  assert.ok(ob.setAside(rows[1]!, tooLarge(2048)));
  assert.not.ok(ob.setAside(rows[1]!, tooLarge(2048)), 'once');
  assert.equal(ids(ob), ['e0', 'e2', 'e3'], 'the rows behind it are handed out');
  assert.is(ob.stats.depth, 3);
  assert.is(ob.stats.undeliverable, 1);
  assert.is(ob.stats.setAside, 1);
  await ob.flush();
  ob.ack(rows[0]!.seq);
  await ob.close();

  const db = new Database(file, { readonly: true });
  const kept = db.prepare('SELECT id, payload, reason, limit_bytes AS limitBytes, limit_by AS limitBy FROM undeliverable').all();
  const queued = db.prepare('SELECT id FROM outbox ORDER BY seq').all();
  db.close();
  assert.equal(kept, [{ id: 'e1', payload: body(1, 3000), reason: 'over the 2048 bytes the relay accepts', limitBytes: 2048, limitBy: 'relay' }]);
  assert.equal(queued, [{ id: 'e2' }, { id: 'e3' }]);

  ob = await open({}, file);
  assert.equal(ids(ob), ['e2', 'e3']);
  assert.is(ob.stats.undeliverable, 1);
  assert.is(ob.stats.undeliverableBytes, body(1, 3000).length);
  assert.is(ob.stats.lastUndeliverable?.id, 'e1');
  assert.is(ob.stats.setAside, 1, 'the counter is persisted');
  assert.is(ob.requeue((e) => e.bytes <= 2048), 0, 'still too large');
  assert.is(ob.requeue(() => true), 1);
  assert.is(ob.stats.undeliverable, 0);
  assert.equal(ids(ob), ['e2', 'e3'], 'handed out once committed');
  await ob.flush();
  const back = ob.peek(0, 10);
  assert.equal(back.map((r) => r.id), ['e2', 'e3', 'e1'], 'at the tail');
  assert.ok(back[2]!.seq > back[1]!.seq, 'under a new seq');
  assert.is(back[2]!.payload, body(1, 3000));
  await ob.close();
  ob = await open({}, file);
  assert.equal(ids(ob), ['e2', 'e3', 'e1']);
  assert.is(ob.stats.undeliverable, 0);
  await ob.close();
});

test('setAside: set-aside rows count against maxEvents and go first when room is needed (drop-oldest); refuse-new keeps them', async () => {
  const ob = await open({ maxEvents: 3 });
  for (let i = 0; i < 3; i++) ob.append(ev(i), body(i));
  await ob.flush();
  const [r0, r1] = ob.peek(0, 2);
  ob.setAside(r0!, tooLarge(1024));
  ob.setAside(r1!, tooLarge(1024));
  ob.append(ev(3), body(3));
  await ob.flush();
  assert.equal(ids(ob), ['e2', 'e3']);
  assert.is(ob.stats.undeliverable, 1, 'e0, set aside first, made room');
  assert.is(ob.stats.lastUndeliverable?.id, 'e1');
  assert.is(ob.stats.dropped, 1);
  await ob.close();

  const keep = await open({ maxEvents: 2, whenFull: 'refuse-new' });
  keep.append(ev(0), body(0));
  await keep.flush();
  keep.setAside(keep.peek(0, 1)[0]!, tooLarge(1024));
  assert.ok(keep.append(ev(1), body(1)).accepted);
  assert.not.ok(keep.append(ev(2), body(2)).accepted, 'full: the set-aside event is kept, the new one refused');
  assert.is(keep.stats.undeliverable, 1);
  await keep.close();
});

test.run();
