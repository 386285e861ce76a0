import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '@tu/shared';
import { openStateStore } from '@tu/agent/internal/orchestrator/store';
import type { AnalysisState } from '@tu/agent/internal/orchestrator/state';
import { tmpDir } from './support/harness.js';

/**
 * The state store's own policy on top of GroupCommitWriter (test/group-commit-writer.test.ts
 * covers the writer): the newest row per analysis wins, a close never replaces an unwritten
 * full row, and `updated_at` comes from the injected clock.
 */

/** The fields the store reads; the rest of an analysis does not matter to it. */
const state = (analysisId: string, status: AnalysisState['status'], version: number): AnalysisState =>
  ({ analysisId, status, receivedAt: 1_000, version, steps: [], results: {}, image: { sha256: `sha-${analysisId}` } }) as unknown as AnalysisState;

test('updated_at is the injected clock, not the wall clock', async () => {
  const clock = new ManualClock(Date.UTC(2030, 5, 1));
  const store = await openStateStore({ file: path.join(tmpDir(), 'state.db'), durability: 'normal', clock });
  await store.save(state('a1', 'running', 1));
  assert.is(store.list({ limit: 10 })[0]!.updatedAt, '2030-06-01T00:00:00.000Z');
  clock.advance(90_000);
  await store.save(state('a1', 'running', 2));
  assert.is(store.list({ limit: 10 })[0]!.updatedAt, '2030-06-01T00:01:30.000Z');
  assert.is(store.imagesByAge(0, 10)[0]!.updatedAt, Date.UTC(2030, 5, 1) + 90_000);
  await store.close();
});

test('saves of one analysis coalesce to the newest; a close amends an unwritten full row instead of replacing it', async () => {
  const file = path.join(tmpDir(), 'state.db');
  const store = await openStateStore({ file, durability: 'normal', clock: new ManualClock() });
  const done = [store.save(state('b1', 'running', 1)), store.save(state('b1', 'running', 2)), store.save(state('b1', 'completed', 3))];
  // Published before the completed row was ever written: the row must still be written, closed.
  done.push(store.markPublished('b1'));
  assert.is(store.stats.pendingRows, 1);
  assert.is(store.get('b1')?.version, 3, 'reads see the unwritten row');
  assert.is(store.onDisk('b1'), false, 'not on disk before its batch is committed (the intake keeps its journal entry)');
  await Promise.all(done);
  assert.is(store.onDisk('b1'), true);
  assert.is(store.stats.rowsWritten, 1, 'four writes of one analysis: one row written');
  assert.is(store.get('b1')?.status, 'completed');
  assert.equal(store.loadOpen(), [], 'the row is closed');
  assert.equal(store.imagesByAge(0, 10).map((r) => r.finished), [true]);
  await store.close();

  const again = await openStateStore({ file, durability: 'normal', clock: new ManualClock() });
  assert.is(again.get('b1')?.version, 3, 'the committed row survives a reopen');
  await again.close();
});

test('has(): true for an analysis waiting to be written, being written or stored, after a reopen too; false for one never saved', async () => {
  const file = path.join(tmpDir(), 'state.db');
  const store = await openStateStore({ file, durability: 'normal', clock: new ManualClock() });
  const written = store.save(state('h1', 'running', 1));
  assert.ok(store.has('h1'), 'pending');
  assert.not.ok(store.has('h2'));
  await written;
  assert.ok(store.has('h1'), 'stored');
  const closed = store.markPublished('h1');
  assert.ok(store.has('h1'), 'a close pending');
  await closed;
  await store.close();
  const again = await openStateStore({ file, durability: 'normal', clock: new ManualClock() });
  assert.ok(again.has('h1'));
  assert.not.ok(again.has('h2'));
  await again.close();
});

test.run();
