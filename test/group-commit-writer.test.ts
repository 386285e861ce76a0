import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, systemClock, type Clock } from '@tu/shared';
import { GroupCommitWriter, type GroupCommitPolicy } from '@tu/agent/internal/sqlite/group-commit-writer';
import { openStateDb, type StoreBatch, type StoreRow } from '@tu/agent/internal/orchestrator/store-db';
import { WriterThread } from '@tu/agent/internal/sqlite/writer-thread';
import { fillDisk, mountTmpfs, unmount } from './support/disk.js';
import { tmpDir, until } from './support/harness.js';

/**
 * GroupCommitWriter on its own, against real SQLite through a real writer thread: the state
 * store's worker entry (orchestrator/store-worker.ts, the compiled one the agent runs), with a
 * policy of the test's own, so what is asserted is the writer's batching, not the store's.
 */
const STORE_WORKER = new URL(import.meta.resolve('@tu/agent/internal/orchestrator/store-worker'));

/** Coalesces per key (the newest row wins), like the state store. */
const perKey: GroupCommitPolicy<Map<string, StoreRow>, StoreBatch> = {
  empty: () => new Map(),
  hasWork: (rows) => rows.size > 0,
  seal: (rows) => [...rows.values()],
};

const row = (id: string, state: string): StoreRow => ({ id, status: 'running', open: 1, createdAt: 1, updatedAt: 1, state });

interface Harness {
  writer: GroupCommitWriter<Map<string, StoreRow>, StoreBatch>;
  /** The batches as committed, in order (ids per batch). */
  committed: string[][];
  writeErrors: Error[];
  fatal: Error[];
  recovered: number[];
  /** A separate read-only connection: what is on disk. */
  read(id: string): string | undefined;
  close(): Promise<void>;
}

function open(dir: string, clock: Clock = systemClock, thread?: WriterThread): Harness {
  const file = path.join(dir, 'state.db');
  openStateDb(file, 'full').close();
  const reader = new Database(file, { readonly: true });
  const h: Omit<Harness, 'writer'> = { committed: [], writeErrors: [], fatal: [], recovered: [], read: () => undefined, close: async () => {} };
  const writer = new GroupCommitWriter({
    entry: STORE_WORKER,
    data: { file, durability: 'full' },
    ...(thread ? { thread } : {}),
    policy: perKey,
    clock,
    writeError: (cause) => Object.assign(new Error(`test store write failed: ${cause.message}`, { cause }), { code: cause.code }),
    onWriteError: (err) => h.writeErrors.push(err),
    onFatal: (err) => h.fatal.push(err),
    onRecovered: (n) => h.recovered.push(n),
    onCommit: ({ sealed }) => h.committed.push(sealed.map((r) => r.id)),
  });
  const get = reader.prepare<[string], { state: string }>('SELECT state FROM analyses WHERE id = ?');
  return {
    ...h,
    writer,
    read: (id) => get.get(id)?.state,
    close: async () => {
      await writer.close();
      reader.close();
    },
  };
}

const save = (h: Harness, r: StoreRow) => {
  h.writer.pending.set(r.id, r);
  return h.writer.commit();
};

test('rows written in one turn coalesce per key into one batch; waiters resolve once it is committed', async () => {
  const h = open(tmpDir());
  const waits: Promise<void>[] = [];
  for (let i = 0; i < 30; i++) waits.push(save(h, row(`a${i % 3}`, `v${i}`)));
  assert.is(h.writer.pending.size, 3, 'thirty saves of three keys: three rows');
  let resolved = 0;
  for (const w of waits) void w.then(() => resolved++);
  await new Promise((r) => setImmediate(r));
  assert.is(resolved, 0, 'nothing resolves before the worker has committed');
  await Promise.all(waits);
  assert.equal(h.committed, [['a0', 'a1', 'a2']]);
  assert.is(h.writer.stats.commits, 1);
  assert.equal(['a0', 'a1', 'a2'].map(h.read), ['v27', 'v28', 'v29'], 'the newest row of each key is on disk');
  await h.close();
});

test('a waiter resolves only when its own batch is on disk; later writes wait for the next batch, in order', async () => {
  const h = open(tmpDir());
  const first = save(h, row('x', 'one'));
  await new Promise((r) => setImmediate(r));
  assert.ok(h.writer.inFlight?.has('x'), 'the first batch is in flight');
  const second = save(h, row('x', 'two'));
  const third = save(h, row('y', 'three'));
  assert.is(h.writer.pending.size, 2, 'rows written meanwhile wait behind the batch in flight');
  let secondDone = false;
  void second.then(() => (secondDone = true));
  await first;
  assert.is(h.read('x'), 'one', 'the first waiter resolves with its row on disk');
  assert.not.ok(secondDone, 'the second batch is not committed yet');
  assert.is(h.read('y'), undefined);
  await Promise.all([second, third]);
  assert.equal(h.committed, [['x'], ['x', 'y']], 'one batch in flight at a time, in order');
  assert.is(h.read('x'), 'two', 'the later batch wins');
  assert.is(h.read('y'), 'three');
  await h.close();
});

test('a failing write rejects its waiters, the pending ones and every later commit; close does not hang', async () => {
  const h = open(tmpDir());
  await save(h, row('ok', 'fine'));
  // NOT NULL on status: a bug, not a full disk.
  const bad = save(h, { ...row('bad', 'x'), status: null as unknown as string });
  await new Promise((r) => setImmediate(r));
  const behind = save(h, row('later', 'y'));
  const err = await bad.then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err, 'the failed batch rejects');
  assert.match(err.message, /^test store write failed: NOT NULL constraint failed/);
  assert.match(String((err as { code?: unknown }).code), /^SQLITE_CONSTRAINT/);
  assert.not.ok(await behind.then(() => true, () => false), 'the batch waiting behind it rejects too');
  assert.is(h.writer.error, err);
  assert.equal(h.fatal, [err]);
  assert.equal(h.writeErrors, [err]);
  assert.is(h.writer.stats.writeRetries, 0, 'not a storage error: no retry');
  assert.not.ok(await save(h, row('after', 'z')).then(() => true, () => false), 'later commits reject at once');
  assert.is(h.read('ok'), 'fine');
  assert.is(h.read('bad'), undefined, 'the transaction was rolled back');
  await h.close();
});

test('files sharing one writer thread each commit their own rows; a file that cannot open fails alone, with its reason', async () => {
  const thread = new WriterThread();
  const [a, b] = [open(tmpDir(), systemClock, thread), open(tmpDir(), systemClock, thread)];
  // Its folder is a file: the database cannot be opened on the writer thread.
  const notADir = path.join(tmpDir(), 'not-a-folder');
  fs.writeFileSync(notADir, '');
  const broken = new GroupCommitWriter({
    entry: STORE_WORKER,
    data: { file: path.join(notADir, 'state.db'), durability: 'full' },
    thread,
    policy: perKey,
    clock: systemClock,
    writeError: (cause) => Object.assign(new Error(`broken store write failed: ${cause.message}`, { cause }), { code: cause.code }),
  });
  await Promise.all([save(a, row('a1', 'in a')), save(b, row('b1', 'in b')), save(a, row('a2', 'in a too'))]);
  const err = await (broken.pending.set('x', row('x', 'lost')), broken.commit()).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err, 'the file that cannot open rejects its writes');
  assert.match(err.message, /broken store write failed: .*(EEXIST|ENOTDIR)/, 'with the reason it cannot open');
  assert.equal([a.read('a1'), a.read('a2'), a.read('b1')], ['in a', 'in a too', undefined], 'each file holds only its own rows');
  assert.is(b.read('b1'), 'in b');
  await save(b, row('b2', 'after the failure'));
  assert.is(b.read('b2'), 'after the failure', 'the others keep writing after one file failed');
  await Promise.all([a.close(), b.close(), broken.close()]);
  await thread.close();
});

test('close() writes what is still pending', async () => {
  const dir = tmpDir();
  const h = open(dir);
  for (let i = 0; i < 50; i++) void save(h, row(`c${i}`, `s${i}`));
  await h.close();
  const db = new Database(path.join(dir, 'state.db'), { readonly: true });
  assert.is(db.prepare<[], { n: number }>('SELECT count(*) AS n FROM analyses').get()!.n, 50);
  db.close();
});

test('a full disk parks the batch and retries it with backoff on the clock; retryNow writes it once space is back', async () => {
  const mnt = mountTmpfs(4);
  if (!mnt) return;
  const clock = new ManualClock();
  const h = open(mnt, clock);
  try {
    await save(h, row('before', 'small'));
    const filler = fillDisk(mnt);
    const big = 'p'.repeat(256 * 1024); // new WAL pages the full disk cannot give
    let done = false;
    const parked = save(h, row('big', big)).then(() => (done = true));
    await until(() => h.writer.stats.writeRetries === 1, 5000, 'the first full-disk failure');
    assert.ok(h.writer.stats.retrying, 'the stats say why writes wait');
    assert.match(String((h.writeErrors[0] as { code?: unknown }).code), /^SQLITE_(FULL|IOERR)/);
    assert.equal(h.fatal, [], 'a full disk is not fatal');
    assert.ok(h.writer.inFlight?.has('big'), 'the batch stays in flight');

    // Newer rows coalesce behind the parked batch.
    const behind = save(h, row('behind', 'one'));
    void save(h, row('behind', 'two'));
    assert.is(h.writer.pending.size, 1);

    // The first retry (number 0) waits initialDelayMs = 250 ms, the second 500 ms.
    clock.advance(249);
    await new Promise((r) => setTimeout(r, 50));
    assert.is(h.writer.stats.writeRetries, 1, 'no retry before the backoff elapsed');
    clock.advance(1);
    await until(() => h.writer.stats.writeRetries === 2, 5000, 'the second failure');
    clock.advance(499);
    await new Promise((r) => setTimeout(r, 50));
    assert.is(h.writer.stats.writeRetries, 2, 'the second delay doubled');
    assert.not.ok(done, 'waiters wait while the disk is full');

    fs.rmSync(filler);
    h.writer.retryNow();
    await parked;
    await behind;
    assert.is(h.writer.stats.retrying, undefined, 'writes go through again');
    assert.equal(h.recovered, [2]);
    assert.is(h.read('big'), big);
    assert.is(h.read('behind'), 'two');
    assert.equal(h.committed, [['before'], ['big'], ['behind']]);
    assert.is(clock.pendingTimers, 0, 'the retry timer was cleared');
  } finally {
    await h.close();
    unmount(mnt);
  }
});

test('close() on a full disk gives the parked batch one more try, then leaves it', async () => {
  const mnt = mountTmpfs(4);
  if (!mnt) return;
  const clock = new ManualClock();
  const h = open(mnt, clock);
  try {
    await save(h, row('before', 'small'));
    fillDisk(mnt);
    void save(h, row('big', 'q'.repeat(256 * 1024))).catch(() => {});
    await until(() => h.writer.stats.writeRetries === 1, 5000, 'the full-disk failure');
    const t0 = Date.now();
    await h.close();
    assert.ok(Date.now() - t0 < 2000, 'close does not wait for space');
    assert.is(h.writer.stats.writeRetries, 2, 'one more try on close');
  } finally {
    unmount(mnt);
  }
});

test.run();
