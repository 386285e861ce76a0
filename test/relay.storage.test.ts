import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, silentLogger, TuError, unpack, type PackedEmbedding } from '@tu/shared';
import { effectsOf, openStorage, storedEvent, type Storage } from '@tu/relay';
import { analysisFlow, dropPgSchema, envelope, PG_BASE, pgSchemaName, type Envelope } from './support/relay.js';
import { labelled, labelVector } from './support/fixtures.js';
import { tmpDir, until } from './support/harness.js';
import type { CloudEvent } from '@tu/shared';
import type { Db } from '@tu/relay/internal/storage/db';
import { openPostgres } from '@tu/relay/internal/storage/postgres';
import { openSqlite } from '@tu/relay/internal/storage/sqlite';
import { StorageQueue } from '@tu/relay/internal/ingest/storage-queue';
import { Presence } from '@tu/relay/internal/ingest/presence';

/** The same storage suite on SQLite and on PostgreSQL (a fresh schema per run, dropped after). */
/** A store opened with the engine only (no migrations), in a place of its own: for migrating old rows. */
type OpenOld = () => Promise<{ db: Db; cleanup: () => Promise<void> }>;

function storageSuite(name: string, open: () => Promise<{ storage: Storage; url: string; cleanup: () => Promise<void>; openOld: OpenOld }>) {
  type Ctx = { storage: Storage; url: string; cleanup: () => Promise<void>; openOld: OpenOld };
  const test = suite<Ctx>(`relay storage: ${name}`);
  test.before(async (ctx) => {
    Object.assign(ctx, await open());
  });
  test.after(async (ctx) => {
    await ctx.storage.close();
    await ctx.cleanup();
  });

  const record = (s: Storage, evs: Envelope[], gw = 'gw-a', tenant = 't1') =>
    s.recordEvents(evs.map((e) => ({ event: storedEvent(e as unknown as CloudEvent, gw, tenant, new Date().toISOString()), effects: effectsOf(e as unknown as CloudEvent, gw, tenant) })));

  test('migrations are applied once and recorded; reopening applies nothing new', async (ctx) => {
    assert.equal(await ctx.storage.migrations(), [1, 2, 3, 4, 5, 6, 7, 8]);
    const again = await openStorage(ctx.url);
    assert.equal(await again.migrations(), [1, 2, 3, 4, 5, 6, 7, 8]);
    await again.close();
  });

  test('registry: tenants and gateways; conflicts and unknown tenants are typed errors', async (ctx) => {
    await ctx.storage.addTenant({ id: 't1', name: 'Tenant one' });
    await ctx.storage.addTenant({ id: 't2' });
    await ctx.storage.addGateway({ id: 'gw-a', tenantId: 't1', name: 'Yard A', secretHash: 'scrypt$x' });
    await ctx.storage.addGateway({ id: 'gw-b', tenantId: 't1', name: 'Yard B', secretHash: 'scrypt$x' });
    await ctx.storage.addGateway({ id: 'gw-z', tenantId: 't2', secretHash: 'scrypt$x' });
    const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof TuError ? e.code : String(e)));
    assert.is(await codeOf(ctx.storage.addTenant({ id: 't1' })), 'REGISTRY_CONFLICT');
    assert.is(await codeOf(ctx.storage.addGateway({ id: 'gw-a', tenantId: 't1', secretHash: 'h' })), 'REGISTRY_CONFLICT');
    assert.is(await codeOf(ctx.storage.addGateway({ id: 'gw-q', tenantId: 'nope', secretHash: 'h' })), 'UNKNOWN_TENANT');
    const p1 = await ctx.storage.listGateways({ tenantId: 't1', first: 1 });
    assert.equal(p1.items.map((g) => g.id), ['gw-a']);
    assert.ok(p1.hasNextPage);
    const { cursorOf } = await import('@tu/relay/internal/storage/sql-storage');
    const p2 = await ctx.storage.listGateways({ tenantId: 't1', first: 1, after: cursorOf.gateway(p1.items[0]!) });
    assert.equal(p2.items.map((g) => g.id), ['gw-b']);
    assert.not.ok(p2.hasNextPage);
    assert.equal((await ctx.storage.listGateways({ tenantId: 't1', first: 10, search: 'yard b' })).items.map((g) => g.id), ['gw-b']);
    await ctx.storage.setGatewayPresences([{ id: 'gw-a', online: true, at: '2030-01-01T00:00:00.000Z' }]);
    const g = await ctx.storage.getGateway('gw-a');
    assert.ok(g?.online);
    assert.is(g?.lastSeen, '2030-01-01T00:00:00.000Z');
    // Many gateways in one statement: an older update changes nothing, an unknown gateway is skipped.
    await ctx.storage.setGatewayPresences([
      { id: 'gw-a', online: false, at: '2029-12-31T23:59:59.000Z' },
      { id: 'gw-b', online: true, at: '2030-01-02T00:00:00.000Z' },
      { id: 'gw-nobody', online: true, at: '2030-01-02T00:00:00.000Z' },
    ]);
    const [a, b] = [await ctx.storage.getGateway('gw-a'), await ctx.storage.getGateway('gw-b')];
    assert.equal([a?.online, a?.lastSeen], [true, '2030-01-01T00:00:00.000Z'], 'an older status does not replace a newer one');
    assert.equal([b?.online, b?.lastSeen], [true, '2030-01-02T00:00:00.000Z']);
    await ctx.storage.setGatewayPresences([{ id: 'gw-a', online: false, at: '2030-01-03T00:00:00.000Z' }]);
    assert.equal((await ctx.storage.getGateway('gw-a'))?.online, false);
  });

  test('analysis.completed upserts the machine and appends the analysis; the same event again is a duplicate', async (ctx) => {
    const flow = analysisFlow('gw-a', { machineId: 'm-1', brand: 'Caterpillar', thumbnail: 'dGh1bWI=' });
    const r = await record(ctx.storage, flow);
    assert.equal(r, ['stored', 'stored', 'stored', 'stored', 'stored']);
    const m = await ctx.storage.getMachine('t1', 'm-1');
    assert.is(m?.type, 'excavator');
    assert.is(m?.brand, 'Caterpillar');
    assert.is(m?.latestThumbnail, 'dGh1bWI=');
    assert.is(m?.gatewayId, 'gw-a');
    const a = await ctx.storage.getAnalysis('t1', flow[0]!.subject);
    assert.is(a?.status, 'completed');
    assert.is((a?.results as { recognition: { machineType: string } }).recognition.machineType, 'excavator');
    const again = await record(ctx.storage, [flow[4]!, flow[0]!]);
    assert.equal(again, ['duplicate', 'duplicate']);
    assert.is((await ctx.storage.getAnalysis('t1', flow[0]!.subject))?.status, 'completed');
    assert.is(await ctx.storage.countEvents({ gatewayId: 'gw-a' }), 5);
  });

  test('the storage queue: batches in flight at once (PostgreSQL), jobs resolved in queue order, every event stored once', async (ctx) => {
    // The relay's rule (relay/src/relay.ts): several writers on PostgreSQL, one on SQLite.
    const writers = ctx.storage.kind === 'postgres' ? 3 : 1;
    await ctx.storage.addTenant({ id: 'tq' });
    let calls = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    // The real storage; the first batch is held back, so later batches commit before it.
    const slowFirst: Storage = Object.assign(Object.create(ctx.storage) as Storage, {
      recordEvents: async (batch: Parameters<Storage['recordEvents']>[0]) => {
        const first = calls++ === 0;
        maxConcurrent = Math.max(maxConcurrent, ++concurrent);
        try {
          if (first) await new Promise((r) => setTimeout(r, 150));
          return await ctx.storage.recordEvents(batch);
        } finally {
          concurrent--;
        }
      },
    });
    const queue = new StorageQueue(slowFirst, { max: 1000, batchMax: 5, writers, logger: silentLogger() });
    // 12 analyses of 3 machines, a minute apart, every event pushed at once; one event twice.
    const flows = Array.from({ length: 12 }, (_, i) => analysisFlow('gw-q', { machineId: `q-${i % 3}`, at: new Date(Date.parse('2026-01-01T00:00:00Z') + i * 60_000) }));
    const events = [...flows.flat(), flows[0]![0]!];
    const resolved: number[] = [];
    const out = await Promise.all(
      events.map((e, i) =>
        queue.push({ kind: 'event', event: storedEvent(e as unknown as CloudEvent, 'gw-q', 'tq', new Date().toISOString()), effects: effectsOf(e as unknown as CloudEvent, 'gw-q', 'tq') }).then((r) => {
          resolved.push(i);
          return r;
        }),
      ),
    );
    await queue.close();
    assert.equal(resolved, events.map((_, i) => i), 'resolved in the order pushed, although later batches committed first');
    assert.is(maxConcurrent, writers, `${writers} batch(es) in flight at once`);
    assert.equal(out.filter((r) => r === 'duplicate').length, 1);
    assert.is(await ctx.storage.countEvents({ gatewayId: 'gw-q' }), flows.flat().length);
    for (const f of flows) assert.is((await ctx.storage.getAnalysis('tq', f[0]!.subject))?.status, 'completed');
    // Each machine's last seen is its newest analysis's, whichever batch committed last.
    for (let m = 0; m < 3; m++) assert.is((await ctx.storage.getMachine('tq', `q-${m}`))?.lastSeen, new Date(Date.parse('2026-01-01T00:00:00Z') + (9 + m) * 60_000).toISOString());
  });

  test('close() while the database fails gives up after its grace period, leaving the jobs unresolved (never acknowledged)', async (ctx) => {
    const down: Storage = Object.assign(Object.create(ctx.storage) as Storage, {
      recordEvents: async () => {
        throw new Error('connection refused');
      },
    });
    const queue = new StorageQueue(down, { max: 10, batchMax: 5, logger: silentLogger(), closeGraceMs: 300 });
    const e = analysisFlow('gw-down')[0]!;
    let resolved = false;
    void queue.push({ kind: 'event', event: storedEvent(e as unknown as CloudEvent, 'gw-down', 'tq', new Date().toISOString()), effects: effectsOf(e as unknown as CloudEvent, 'gw-down', 'tq') }).then(() => (resolved = true));
    const closed = await Promise.race([queue.close().then(() => true), new Promise<boolean>((r) => setTimeout(r, 5000, false))]);
    assert.ok(closed, 'close() returned (it waited for ever before)');
    assert.ok(queue.stats.errors >= 1, 'the write was tried');
    await new Promise((r) => setTimeout(r, 100));
    assert.not.ok(resolved, 'the event was not reported stored');
    assert.is(await ctx.storage.countEvents({ gatewayId: 'gw-down' }), 0);
  });

  test('database down: presence changes wait at most one per gateway (the latest), never for room among the events, and are all written once it is back; events keep their order', async (ctx) => {
    await ctx.storage.addTenant({ id: 'tpres' });
    const ids = Array.from({ length: 50 }, (_, i) => `gw-pres-${i}`);
    for (const id of ids) await ctx.storage.addGateway({ id, tenantId: 'tpres', secretHash: 'scrypt$x' });
    // The real storage, refusing every write while `down` (a database outage).
    let down = true;
    let presenceRows = 0;
    const flaky: Storage = Object.assign(Object.create(ctx.storage) as Storage, {
      recordEvents: async (batch: Parameters<Storage['recordEvents']>[0]) => {
        if (down) throw new Error('connection refused');
        return ctx.storage.recordEvents(batch);
      },
      setGatewayPresences: async (updates: Parameters<Storage['setGatewayPresences']>[0]) => {
        if (down) throw new Error('connection refused');
        presenceRows += updates.length;
        return ctx.storage.setGatewayPresences(updates);
      },
    });
    const queue = new StorageQueue(flaky, { max: 5, batchMax: 5, logger: silentLogger() });
    let now = Date.parse('2032-01-01T00:00:00.000Z');
    const presence = new Presence(queue, { authoritative: true, now: () => new Date(now) });
    // Gateways reconnecting on flaky links through the outage (the repro had 400,000 changes).
    const flap = (rounds: number) => {
      for (let r = 0; r < rounds; r++)
        for (const id of ids) {
          now += 1;
          presence.connected(id);
          presence.disconnected(id);
        }
    };
    flap(1); // the first update starts the writer: it fails, and is retried with its batch
    const events = [...analysisFlow('gw-pres-0'), ...analysisFlow('gw-pres-0')];
    const resolved: number[] = [];
    const acks = events.map((e, i) =>
      queue.push({ kind: 'event', event: storedEvent(e as unknown as CloudEvent, 'gw-pres-0', 'tpres', new Date().toISOString()), effects: effectsOf(e as unknown as CloudEvent, 'gw-pres-0', 'tpres') }).then((r) => {
        resolved.push(i);
        return r;
      }),
    );
    flap(200);
    await new Promise((r) => setTimeout(r, 50));
    const h = queue.health();
    assert.ok(h.presencePending >= ids.length && h.presencePending <= ids.length + 1, `one waiting per gateway, plus the one being retried (${h.presencePending})`);
    assert.is(h.pushesWaiting, events.length - 5, 'the events beyond queueMax wait for room; presence never does');
    assert.ok(h.failingForMs >= 0 && h.lastError === 'connection refused');
    down = false;
    assert.equal(await Promise.all(acks), events.map(() => 'stored'));
    assert.equal(resolved, events.map((_, i) => i), 'resolved in the order pushed');
    await queue.flush();
    assert.ok(presenceRows <= ids.length + 1, `at most one row per gateway written after the outage, not one per change (${presenceRows})`);
    assert.equal(queue.health().presencePending, 0);
    assert.is(queue.depth, 0);
    // Each gateway's row is its latest change: offline, at its last disconnect.
    for (const [i, id] of ids.entries()) {
      const g = await ctx.storage.getGateway(id);
      assert.equal([g?.online, g?.lastSeen], [false, new Date(now - (ids.length - 1 - i)).toISOString()], id);
    }
    assert.is(await ctx.storage.countEvents({ gatewayId: 'gw-pres-0' }), events.length);
    await queue.close();
  });

  test('a late analysis.started never reverts a finished analysis; an older photo does not replace the newer thumbnail', async (ctx) => {
    const newer = analysisFlow('gw-a', { machineId: 'm-2', thumbnail: 'bmV3', at: new Date('2025-05-02T00:00:00Z') });
    const older = analysisFlow('gw-a', { machineId: 'm-2', thumbnail: 'b2xk', brand: 'Volvo', at: new Date('2025-05-01T00:00:00Z') });
    await record(ctx.storage, [newer[4]!, newer[0]!]);
    assert.is((await ctx.storage.getAnalysis('t1', newer[0]!.subject))?.status, 'completed');
    await record(ctx.storage, [older[4]!]);
    const m = await ctx.storage.getMachine('t1', 'm-2');
    assert.is(m?.latestThumbnail, 'bmV3');
    assert.is(m?.lastSeen, '2025-05-02T00:00:00.000Z');
    assert.is(m?.brand, 'Volvo', 'fields known only from the older photo are still filled in');
  });

  test('analysis.failed records the failed analysis (machine defaults to {gatewayId}:default) without changing machine fields', async (ctx) => {
    const flow = analysisFlow('gw-b', { outcome: 'failed' });
    await record(ctx.storage, flow, 'gw-b');
    const a = await ctx.storage.getAnalysis('t1', flow[0]!.subject);
    assert.is(a?.status, 'failed');
    assert.is(a?.machineId, 'gw-b:default');
    assert.is((a?.failure as { code: string; failedStep: string }).code, 'MODEL_NOT_LOADED');
    const m = await ctx.storage.getMachine('t1', 'gw-b:default');
    assert.ok(m);
    assert.is(m?.type, null);
    assert.is(m?.latestThumbnail, null);
  });

  test('machines and analyses: keyset pagination, filters, text search, tenant isolation', async (ctx) => {
    for (let i = 0; i < 5; i++) await record(ctx.storage, analysisFlow('gw-b', { machineId: `page-${i}`, at: new Date(Date.UTC(2031, 0, 1, 0, i)) }).slice(-1), 'gw-b');
    await record(ctx.storage, analysisFlow('gw-z', { machineId: 'other-tenant' }).slice(-1), 'gw-z', 't2');
    const ids: string[] = [];
    let after: string | undefined;
    const { cursorOf } = await import('@tu/relay/internal/storage/sql-storage');
    for (;;) {
      const p = await ctx.storage.listMachines({ tenantId: 't1', gatewayId: 'gw-b', search: 'page-', first: 2, after });
      ids.push(...p.items.map((m) => m.id));
      if (!p.hasNextPage) break;
      after = cursorOf.machine(p.items.at(-1)!);
    }
    assert.equal(ids, ['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    assert.is((await ctx.storage.listMachines({ tenantId: 't1', type: 'EXCAVATOR', first: 100 })).items.length, 7);
    assert.is((await ctx.storage.listMachines({ tenantId: 't1', search: '100%_', first: 100 })).items.length, 0, 'LIKE wildcards are escaped');
    assert.is(await ctx.storage.getMachine('t1', 'other-tenant'), undefined);
    assert.equal((await ctx.storage.listMachines({ tenantId: 't2', first: 10 })).items.map((m) => m.id), ['other-tenant']);
    const an: string[] = [];
    after = undefined;
    for (;;) {
      const p = await ctx.storage.listAnalyses({ tenantId: 't1', gatewayId: 'gw-b', status: 'completed', first: 2, after });
      an.push(...p.items.map((a) => a.machineId));
      if (!p.hasNextPage) break;
      after = cursorOf.analysis(p.items.at(-1)!);
    }
    assert.equal(an, ['page-4', 'page-3', 'page-2', 'page-1', 'page-0'], 'newest first');
    assert.is((await ctx.storage.listAnalyses({ tenantId: 't1', status: 'failed', first: 10 })).items.length, 1);
    assert.ok((await ctx.storage.recentEventIds(3)).length === 3);
  });

  test('text search and the type filter ignore the case of non-ASCII letters (Ü, É), as on PostgreSQL', async (ctx) => {
    // SQLite's own lower() folds only A-Z: a machine named "Bagger NORD-SÜD" was not found by
    // "SÜD" or "süd", nor its registered type "RADLADER-Ü" by itself, where PostgreSQL found both.
    await ctx.storage.addTenant({ id: 'tu' });
    await ctx.storage.addGateway({ id: 'gw-sued', tenantId: 'tu', name: 'Baustelle SÜD', secretHash: 'scrypt$x' });
    await record(ctx.storage, analysisFlow('gw-sued', { machineId: 'ÉB-1', registered: { type: 'RADLADER-Ü', name: 'Bagger NORD-SÜD' } }).slice(-1), 'gw-sued', 'tu');
    await record(ctx.storage, analysisFlow('gw-sued', { machineId: 'plain-1', registered: { type: 'excavator', name: 'Bagger West' } }).slice(-1), 'gw-sued', 'tu');
    const machines = async (f: { search?: string; type?: string }) => (await ctx.storage.listMachines({ tenantId: 'tu', first: 10, ...f })).items.map((m) => m.id);
    for (const search of ['SÜD', 'süd', 'Süd', 'éb-1']) assert.equal(await machines({ search }), ['ÉB-1'], `search ${search}`);
    for (const type of ['RADLADER-Ü', 'radlader-ü']) assert.equal(await machines({ type }), ['ÉB-1'], `type ${type}`);
    assert.equal((await ctx.storage.listGateways({ tenantId: 'tu', first: 10, search: 'süd' })).items.map((g) => g.id), ['gw-sued']);
  });

  test('labelled examples: idempotent by correction id, the newest label per analysis counts, per-type accuracy and export per tenant', async (ctx) => {
    const at = (m: number) => new Date(Date.UTC(2031, 0, 1, 0, m)).toISOString();
    const lab = (gw: string, over: Parameters<typeof labelled>[0]) => envelope(gw, 'recognition.labelled', labelled(over));
    // gw-a (t1): 3 excavator confirmed; 1 excavator corrected to wheel_loader; an analysis first
    // corrected (crane → negative) then relabelled crane (confirmation: only that one counts).
    const confirms = [0, 1, 2].map((i) => lab('gw-a', { label: 'excavator', previousLabel: 'excavator', kind: 'confirmation', at: at(i) }));
    const away = lab('gw-a', { label: 'wheel_loader', previousLabel: 'excavator', kind: 'correction', at: at(3) });
    const first = lab('gw-a', { label: 'negative', previousLabel: 'crane', kind: 'correction', at: at(4) });
    const relabel = lab('gw-a', { analysisId: (first.data as { analysisId: string }).analysisId, label: 'crane', previousLabel: 'crane', kind: 'confirmation', at: at(5) });
    const unknown = lab('gw-b', { label: 'roller', previousLabel: 'unknown', kind: 'correction', at: at(6) });
    assert.equal(await record(ctx.storage, [...confirms, away, first, relabel]), Array(6).fill('stored'));
    await record(ctx.storage, [unknown], 'gw-b');
    // Another tenant's gateway: never in t1's numbers.
    await record(ctx.storage, [lab('gw-z', { label: 'excavator', previousLabel: 'excavator', kind: 'confirmation', at: at(7) })], 'gw-z', 't2');
    // The same correction re-sent under a new event id (e.g. re-published after a gateway restart): stored once.
    const resent = { ...away, id: 'another-event-id-for-the-same-correction' };
    assert.equal(await record(ctx.storage, [resent]), ['stored'], 'a new event id is a new event');

    const acc = await ctx.storage.typeAccuracy({ tenantId: 't1' });
    assert.equal(acc, [
      { machineType: 'crane', confirmed: 1, correctedAway: 0, correctedTo: 0, accuracy: 1 },
      { machineType: 'excavator', confirmed: 3, correctedAway: 1, correctedTo: 0, accuracy: 0.75 },
      { machineType: 'roller', confirmed: 0, correctedAway: 0, correctedTo: 1, accuracy: null },
      { machineType: 'unknown', confirmed: 0, correctedAway: 1, correctedTo: 0, accuracy: 0 },
      { machineType: 'wheel_loader', confirmed: 0, correctedAway: 0, correctedTo: 1, accuracy: null },
    ]);
    assert.equal((await ctx.storage.typeAccuracy({ tenantId: 't1', gatewayId: 'gw-b' })).map((r) => r.machineType), ['roller', 'unknown']);
    assert.equal(await ctx.storage.typeAccuracy({ tenantId: 't2' }), [{ machineType: 'excavator', confirmed: 1, correctedAway: 0, correctedTo: 0, accuracy: 1 }]);
    assert.equal(await ctx.storage.typeAccuracy({ tenantId: 'nobody' }), []);

    const { cursorOf } = await import('@tu/relay/internal/storage/sql-storage');
    const p1 = await ctx.storage.listLabelledExamples({ tenantId: 't1', first: 4 });
    assert.ok(p1.hasNextPage);
    const p2 = await ctx.storage.listLabelledExamples({ tenantId: 't1', first: 4, after: cursorOf.example(p1.items.at(-1)!) });
    assert.not.ok(p2.hasNextPage);
    const all = [...p1.items, ...p2.items];
    assert.equal(all.map((x) => x.label), ['excavator', 'excavator', 'excavator', 'wheel_loader', 'crane', 'roller'], 'oldest first, superseded label left out');
    const x = all[3]!;
    const d = away.data as ReturnType<typeof labelled>;
    assert.equal(
      { id: x.id, gatewayId: x.gatewayId, analysisId: x.analysisId, sha256: x.sha256, by: x.by, kind: x.kind, previousLabel: x.previousLabel, modelId: x.modelId, modelVersion: x.modelVersion, headId: x.headId },
      { id: d.correctionId, gatewayId: 'gw-a', analysisId: d.analysisId, sha256: d.sha256, by: d.by, kind: 'correction', previousLabel: 'excavator', modelId: 'mobilenet_v1_025_224', modelVersion: '1', headId: null },
    );
    assert.equal(x.embedding, labelVector(), 'embedding round-trips exactly (sent packed, stored as numbers)');
    assert.equal((await ctx.storage.listLabelledExamples({ tenantId: 't2', first: 10 })).items.map((e) => e.gatewayId), ['gw-z']);
  });

  test('the registered machine (id, name, type) is stored; the photo recognition is evidence beside the type, never the type', async (ctx) => {
    const site4 = { id: 'EXC-4', name: 'Site 4 excavator', type: 'wheel_loader', brand: 'Volvo', model: 'L60H', serialNumber: 'VCE-L60H-4' };
    const at = (h: number) => new Date(Date.UTC(2025, 0, 1, h));
    // Two photos of the registered wheel loader; the later one recognised as a forklift.
    await record(ctx.storage, analysisFlow('gw-r', { registered: site4, recognised: { machineType: 'wheel_loader', confidence: 0.88 }, at: at(1) }).slice(-1), 'gw-r', 't3');
    const forklift = analysisFlow('gw-r', { registered: site4, recognised: { machineType: 'forklift', confidence: 0.71 }, at: at(2) });
    await record(ctx.storage, forklift.slice(-1), 'gw-r', 't3');
    const m = await ctx.storage.getMachine('t3', 'gw-r:default');
    assert.is(m?.name, 'Site 4 excavator');
    assert.is(m?.registeredId, 'EXC-4');
    assert.is(m?.type, 'wheel_loader', 'the registered type stays the type');
    assert.equal(m?.lastRecognition, { machineType: 'forklift', confidence: 0.71, analysisId: forklift[0]!.subject });
    assert.is(m?.typeMatch, false, 'the disagreement is kept');
    assert.equal((await ctx.storage.listMachines({ tenantId: 't3', search: 'Site 4', first: 10 })).items.map((x) => x.id), ['gw-r:default']);
    assert.equal((await ctx.storage.listMachines({ tenantId: 't3', search: 'EXC-4', first: 10 })).items.map((x) => x.id), ['gw-r:default'], 'the registered id is searchable');
    // An older photo arriving late changes neither the evidence nor the check.
    await record(ctx.storage, analysisFlow('gw-r', { registered: site4, recognised: { machineType: 'wheel_loader', confidence: 0.9 }, at: at(0) }).slice(-1), 'gw-r', 't3');
    assert.equal((await ctx.storage.getMachine('t3', 'gw-r:default'))?.lastRecognition?.machineType, 'forklift');
    // Re-registered as another machine with fewer fields: the old brand and serial are not shown for it.
    await record(ctx.storage, analysisFlow('gw-r', { registered: { id: 'EXC-5', name: 'Site 5 loader', type: 'wheel_loader' }, at: at(4) }).slice(-1), 'gw-r', 't3');
    const again = await ctx.storage.getMachine('t3', 'gw-r:default');
    assert.equal([again?.registeredId, again?.name, again?.type, again?.brand, again?.model, again?.serialNumber], ['EXC-5', 'Site 5 loader', 'wheel_loader', null, null, null]);

    // Nothing registered: the recognised type is evidence only; the machine has no type.
    await record(ctx.storage, analysisFlow('gw-s', { registered: null, recognised: { machineType: 'forklift', confidence: 0.93 }, at: at(3) }).slice(-1), 'gw-s', 't3');
    const bare = await ctx.storage.getMachine('t3', 'gw-s:default');
    assert.is(bare?.type, null);
    assert.is(bare?.name, null);
    assert.is(bare?.lastRecognition?.machineType, 'forklift');
    assert.is(bare?.typeMatch, null, 'nothing to disagree with');
    assert.is((await ctx.storage.listMachines({ tenantId: 't3', type: 'forklift', first: 10 })).items.length, 0, 'the type filter is by registered type');
  });

  test('recent events: the tenant\'s newest first, one gateway, limited', async (ctx) => {
    const flow = analysisFlow('gw-e');
    await record(ctx.storage, flow, 'gw-e', 't4');
    await record(ctx.storage, analysisFlow('gw-f').slice(0, 1), 'gw-f', 't4');
    await record(ctx.storage, analysisFlow('gw-x').slice(0, 1), 'gw-x', 't5');
    const all = await ctx.storage.listEvents({ tenantId: 't4', limit: 100 });
    assert.is(all.length, flow.length + 1);
    assert.ok(all.every((e) => e.tenantId === 't4'));
    const gw = await ctx.storage.listEvents({ tenantId: 't4', gatewayId: 'gw-e', limit: 3 });
    assert.equal(gw.map((e) => e.id), flow.slice(-3).reverse().map((e) => e.id), 'newest first');
    // Stored as sent, less the photo embedding (kept once, in analysis_embeddings).
    const sent = structuredClone(flow.at(-1)!.data) as { results: { recognition: { embedding?: number[] } } };
    assert.ok(sent.results.recognition.embedding);
    delete sent.results.recognition.embedding;
    assert.equal(gw[0]!.data, sent);
  });

  test('issue 8 finding 9: a machine id is the tenant\'s own; another tenant\'s gateway using it first hides nothing', async (ctx) => {
    await ctx.storage.addTenant({ id: 'sq-a' });
    await ctx.storage.addTenant({ id: 'sq-b' });
    // Tenant B's gateway registers EX-SQUAT-7 first (and a label for it), then tenant A's.
    const b = analysisFlow('gw-sq-b', { machineId: 'EX-SQUAT-7', registered: { id: 'EX-SQUAT-7', name: 'B squatter', type: 'crane', brand: 'Liebherr' }, thumbnail: 'Qg==', at: new Date('2025-03-01T10:00:00Z') });
    const a = analysisFlow('gw-sq-a', { machineId: 'EX-SQUAT-7', registered: { id: 'EX-SQUAT-7', name: 'A excavator', type: 'excavator', brand: 'Caterpillar' }, thumbnail: 'QQ==', at: new Date('2025-03-01T09:00:00Z') });
    const labelB = envelope('gw-sq-b', 'recognition.labelled', labelled({ analysisId: b[0]!.subject, machineId: 'EX-SQUAT-7', label: 'crane', previousLabel: 'crane', kind: 'confirmation' }));
    assert.equal(await record(ctx.storage, [...b, labelB], 'gw-sq-b', 'sq-b'), Array(6).fill('stored'));
    // Same analysis id and correction id in both tenants (ids are the gateways' choice).
    const aSameIds = a.map((e) => (e.subject === a[0]!.subject ? { ...e, subject: b[0]!.subject, data: { ...(e.data as object), analysisId: b[0]!.subject } } : e));
    const labelA = { ...envelope('gw-sq-a', 'recognition.labelled', labelled({ analysisId: b[0]!.subject, machineId: 'EX-SQUAT-7', label: 'excavator', previousLabel: 'excavator', kind: 'confirmation' })) };
    (labelA.data as { correctionId: string }).correctionId = (labelB.data as { correctionId: string }).correctionId;
    assert.equal(await record(ctx.storage, [...aSameIds, labelA], 'gw-sq-a', 'sq-a'), Array(6).fill('stored'));

    const mA = await ctx.storage.getMachine('sq-a', 'EX-SQUAT-7');
    const mB = await ctx.storage.getMachine('sq-b', 'EX-SQUAT-7');
    assert.equal([mA?.gatewayId, mA?.name, mA?.type, mA?.brand, mA?.latestThumbnail, mA?.lastSeen], ['gw-sq-a', 'A excavator', 'excavator', 'Caterpillar', 'QQ==', '2025-03-01T09:00:00.000Z'], "A's machine is A's");
    assert.equal([mB?.gatewayId, mB?.name, mB?.type, mB?.brand, mB?.latestThumbnail, mB?.lastSeen], ['gw-sq-b', 'B squatter', 'crane', 'Liebherr', 'Qg==', '2025-03-01T10:00:00.000Z'], "B's machine is unchanged by A's");
    assert.equal((await ctx.storage.listMachines({ tenantId: 'sq-a', first: 10 })).items.map((m) => m.gatewayId), ['gw-sq-a']);
    assert.equal((await ctx.storage.listMachines({ tenantId: 'sq-b', first: 10 })).items.map((m) => m.gatewayId), ['gw-sq-b']);
    const anA = await ctx.storage.listAnalyses({ tenantId: 'sq-a', machineId: 'EX-SQUAT-7', first: 10 });
    assert.equal(anA.items.map((x) => [x.id, x.gatewayId]), [[b[0]!.subject, 'gw-sq-a']], "A's analysis of that id is A's");
    assert.is((await ctx.storage.getAnalysis('sq-b', b[0]!.subject))?.gatewayId, 'gw-sq-b');
    assert.equal((await ctx.storage.listLabelledExamples({ tenantId: 'sq-a', first: 10 })).items.map((x) => [x.gatewayId, x.label]), [['gw-sq-a', 'excavator']]);
    assert.equal((await ctx.storage.listLabelledExamples({ tenantId: 'sq-b', first: 10 })).items.map((x) => [x.gatewayId, x.label]), [['gw-sq-b', 'crane']]);
  });

  test("an event id is its gateway's own: another gateway's event of that id is stored, not taken for a duplicate (migration 008)", async (ctx) => {
    await ctx.storage.addTenant({ id: 'eid-a' });
    await ctx.storage.addTenant({ id: 'eid-b' });
    const a = analysisFlow('gw-eid-a', { machineId: 'EID-A' });
    assert.equal(await record(ctx.storage, a, 'gw-eid-a', 'eid-a'), Array(a.length).fill('stored'));
    // Gateway B (another tenant) sends events whose ids A used first: each is B's own event.
    const b = analysisFlow('gw-eid-b', { machineId: 'EID-B' }).map((e, i) => ({ ...e, id: a[i]!.id }));
    assert.equal(await record(ctx.storage, b, 'gw-eid-b', 'eid-b'), Array(b.length).fill('stored'));
    assert.is(await ctx.storage.countEvents({ gatewayId: 'gw-eid-b' }), b.length);
    assert.is((await ctx.storage.getMachine('eid-b', 'EID-B'))?.gatewayId, 'gw-eid-b', "B's analysis had its effects");
    assert.equal((await ctx.storage.listEvents({ tenantId: 'eid-b', limit: 10 })).map((e) => e.gatewayId), Array(b.length).fill('gw-eid-b'));
    // A repeat from the same gateway is still a duplicate, in a later batch and within one.
    const fresh = analysisFlow('gw-eid-b', { machineId: 'EID-B' })[0]!;
    assert.equal(await record(ctx.storage, [b[0]!, fresh, fresh], 'gw-eid-b', 'eid-b'), ['duplicate', 'stored', 'duplicate']);
    const recent = await ctx.storage.recentEventIds(1000);
    assert.ok(recent.some((k) => k.gatewayId === 'gw-eid-a' && k.id === a[0]!.id) && recent.some((k) => k.gatewayId === 'gw-eid-b' && k.id === a[0]!.id), 'the window is primed with both');
  });

  test('migration 008 keeps the events stored before it, and retention deletes by gateway and id', async (ctx) => {
    const { loadMigrations, migrate } = await import('@tu/relay/internal/storage/migrate');
    const { SqlStorage } = await import('@tu/relay/internal/storage/sql-storage');
    const old = await ctx.openOld();
    assert.equal(await migrate(old.db, loadMigrations().filter((m) => m.version <= 7)), [1, 2, 3, 4, 5, 6, 7]);
    const insert = (gw: string, recv: string) =>
      old.db.run(`INSERT INTO events (id, tenant_id, gateway_id, type, subject, time, received_at, data) VALUES ('ev-old-1', 'told', ?, 'analysis.started', 'an-1', ?, ?, ${old.db.kind === 'postgres' ? "'{}'::jsonb" : "'{}'"})`, [gw, recv, recv]);
    await insert('gw-old', '2024-01-02T03:04:05.000Z');
    const s = await SqlStorage.open(old.db);
    try {
      assert.equal(await s.migrations(), [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.equal(await s.recentEventIds(10), [{ gatewayId: 'gw-old', id: 'ev-old-1' }]);
      // Another gateway's event of the same id, received later: retention of the old one leaves it.
      await insert('gw-new', '2030-01-02T03:04:05.000Z');
      assert.is(await s.deleteEventsBefore('2025-01-01T00:00:00.000Z', 10), 1);
      assert.equal(await s.recentEventIds(10), [{ gatewayId: 'gw-new', id: 'ev-old-1' }]);
    } finally {
      await s.close();
      await old.cleanup();
    }
  });

  test('migration 004 keeps the rows stored before it (machines, analyses, labelled examples)', async (ctx) => {
    const { loadMigrations, migrate } = await import('@tu/relay/internal/storage/migrate');
    const { SqlStorage } = await import('@tu/relay/internal/storage/sql-storage');
    const old = await ctx.openOld();
    assert.equal(await migrate(old.db, loadMigrations().filter((m) => m.version <= 3)), [1, 2, 3]);
    await old.db.run("INSERT INTO machines (id, tenant_id, gateway_id, name, last_seen, last_position, registered_id) VALUES ('OLD-1', 'told', 'gw-old', 'Old digger', '2024-01-02T03:04:05.000Z', '{\"latitude\":50.1,\"longitude\":14.4}', 'OLD-1')");
    await old.db.run("INSERT INTO analyses (id, tenant_id, gateway_id, machine_id, status, sort_time) VALUES ('an-old-1', 'told', 'gw-old', 'OLD-1', 'completed', '2024-01-02T03:04:05.000Z')");
    await old.db.run(
      "INSERT INTO labelled_examples (id, tenant_id, gateway_id, analysis_id, machine_id, sha256, embedding, label, previous_label, kind, by_whom, at, model_id, model_version, received_at) VALUES ('c-old-1', 'told', 'gw-old', 'an-old-1', 'OLD-1', 'ab', '[0.5]', 'excavator', 'excavator', 'confirmation', 'tech', '2024-01-02T03:04:05.000Z', 'm', '1', '2024-01-02T03:04:05.000Z')",
    );
    const s = await SqlStorage.open(old.db);
    try {
      assert.equal(await s.migrations(), [1, 2, 3, 4, 5, 6, 7, 8]);
      const m = await s.getMachine('told', 'OLD-1');
      assert.equal([m?.name, m?.lastSeen, m?.lastPosition, m?.registeredId, m?.lastSeenSource], ['Old digger', '2024-01-02T03:04:05.000Z', { latitude: 50.1, longitude: 14.4 }, 'OLD-1', null]);
      assert.is((await s.getAnalysis('told', 'an-old-1'))?.machineId, 'OLD-1');
      assert.equal((await s.listLabelledExamples({ tenantId: 'told', first: 5 })).items.map((x) => [x.id, x.embedding]), [['c-old-1', [0.5]]]);
    } finally {
      await s.close();
      await old.cleanup();
    }
  });

  test('issue 8 finding 10: a future-dated sighting never freezes the machine; the time used and why are kept', async (ctx) => {
    const receivedAt = '2026-02-01T12:00:00.000Z';
    const at = (iso: string) => ({ at: new Date(iso) });
    const put = (evs: Envelope[], recv: string) =>
      ctx.storage.recordEvents(evs.map((e) => ({ event: storedEvent(e as unknown as CloudEvent, 'gw-ft', 'tft', recv), effects: effectsOf(e as unknown as CloudEvent, 'gw-ft', 'tft', recv) })));
    // A gateway (older firmware, or its clock ahead) says the photo was taken 23 h after it was uploaded.
    const forged = analysisFlow('gw-ft', { machineId: 'FT-1', thumbnail: 'Zm9yZ2Vk', ...at('2026-02-01T11:59:00Z') });
    const forgedDone = forged.at(-1)!;
    const fd = forgedDone.data as { results: { metadata: { record: { lastSeenAt: string; lastSeenAtSource?: string; lastPosition?: unknown } } } };
    fd.results.metadata.record.lastSeenAt = '2026-02-02T10:59:00.000Z';
    fd.results.metadata.record.lastSeenAtSource = 'capture-time';
    fd.results.metadata.record.lastPosition = { latitude: 1.5, longitude: 1.5 };
    await put([forgedDone], receivedAt);
    const m1 = await ctx.storage.getMachine('tft', 'FT-1');
    assert.is(m1?.lastSeen, '2026-02-01T11:59:00.000Z', 'the upload time, not the future capture time');
    assert.is(m1?.lastSeenSource, 'upload-time');
    assert.match(m1?.lastSeenNote ?? '', /2026-02-02T10:59:00.000Z is implausible \(after its upload/);
    // Its whole clock ahead (upload and completion in the future too): the relay's receipt time.
    const ahead = analysisFlow('gw-ft', { machineId: 'FT-2', ...at('2026-02-03T00:00:00Z') });
    await put([ahead.at(-1)!], receivedAt);
    const m2 = await ctx.storage.getMachine('tft', 'FT-2');
    assert.equal([m2?.lastSeen, m2?.lastSeenSource], [receivedAt, 'relay-receipt']);
    assert.match(m2?.lastSeenNote ?? '', /after the relay received the event/);
    // A real photo taken later moves the machine on: position, thumbnail, time.
    const real = analysisFlow('gw-ft', { machineId: 'FT-1', thumbnail: 'cmVhbA==', ...at('2026-02-01T12:30:00Z') });
    const rd = real.at(-1)!.data as typeof fd;
    rd.results.metadata.record.lastSeenAtSource = 'capture-time';
    rd.results.metadata.record.lastPosition = { latitude: 50.08, longitude: 14.42 };
    await put([real.at(-1)!], '2026-02-01T12:31:00.000Z');
    const m3 = await ctx.storage.getMachine('tft', 'FT-1');
    assert.equal([m3?.lastSeen, m3?.lastSeenSource, m3?.lastSeenNote, m3?.latestThumbnail, m3?.lastPosition], ['2026-02-01T12:30:00.000Z', 'capture-time', null, 'cmVhbA==', { latitude: 50.08, longitude: 14.42 }]);
  });

  test('a batch is one transaction: a failing statement stores none of it', async (ctx) => {
    const before = await ctx.storage.countEvents();
    const flow = analysisFlow('gw-a');
    await ctx.storage
      .recordEvents([
        { event: storedEvent(flow[0] as unknown as CloudEvent, 'gw-a', 't1', new Date().toISOString()), effects: {} },
        { event: { ...storedEvent(flow[1] as unknown as CloudEvent, 'gw-a', 't1', new Date().toISOString()), id: null as unknown as string }, effects: {} },
      ])
      .then(
        () => assert.unreachable('should fail'),
        () => undefined,
      );
    assert.is(await ctx.storage.countEvents(), before);
  });

  test('one batch, several effects on the same rows: applied in event order; a repeated id in the batch is a duplicate', async (ctx) => {
    const a = analysisFlow('gw-a', { machineId: 'B-1', thumbnail: 'b2xk', brand: 'Old', at: new Date('2025-06-01T00:00:00Z') });
    const b = analysisFlow('gw-a', { machineId: 'B-1', thumbnail: 'bmV3', brand: 'New', at: new Date('2025-06-02T00:00:00Z') });
    const c = analysisFlow('gw-a', { machineId: 'B-1', thumbnail: 'bWlk', at: new Date('2025-06-01T12:00:00Z') });
    const r = await record(ctx.storage, [...a, b[4]!, a[4]!, b[0]!, c[4]!]);
    assert.equal(r, ['stored', 'stored', 'stored', 'stored', 'stored', 'stored', 'duplicate', 'stored', 'stored']);
    const m = await ctx.storage.getMachine('t1', 'B-1');
    assert.equal([m?.latestThumbnail, m?.lastSeen], ['bmV3', '2025-06-02T00:00:00.000Z'], 'the newest photo wins whatever the order in the batch');
    assert.is((await ctx.storage.getAnalysis('t1', b[0]!.subject))?.status, 'completed', 'a later analysis.started in the same batch does not revert it');
    assert.is((await ctx.storage.getAnalysis('t1', c[0]!.subject))?.status, 'completed');
    const many = Array.from({ length: 450 }, (_, i) => analysisFlow('gw-a', { machineId: `BM-${i % 7}` }).at(-1)!);
    const rr = await record(ctx.storage, many);
    assert.is(rr.filter((x) => x === 'stored').length, 450, 'a batch over the rows-per-statement limit');
    assert.is((await ctx.storage.listMachines({ tenantId: 't1', first: 100, search: 'BM-' })).items.length, 7);
  });

  test('the embedding is stored apart from the analysis row the dashboard reads', async (ctx) => {
    const flow = analysisFlow('gw-a', { machineId: 'E-1' });
    await record(ctx.storage, flow);
    const done = flow.at(-1)!.data as { results: { recognition: { embedding: PackedEmbedding } } };
    const a = await ctx.storage.getAnalysis('t1', flow[0]!.subject);
    const rec = (a?.results as { recognition: Record<string, unknown> }).recognition;
    assert.is(rec.machineType, 'excavator');
    assert.not.ok('embedding' in rec, 'not in the dashboard row');
    assert.equal(await ctx.storage.analysisEmbedding('t1', flow[0]!.subject), unpack(done.results.recognition.embedding), 'the same numbers back');
    assert.is(await ctx.storage.analysisEmbedding('t2', flow[0]!.subject), undefined, 'keyed by tenant');
    if (ctx.storage.kind === 'postgres') {
      const db = await openPostgres(ctx.url);
      try {
        const cols = await db.all<{ table_name: string; column_name: string; data_type: string }>(
          "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND data_type = 'jsonb' ORDER BY table_name, column_name",
        );
        assert.equal(cols.map((c) => `${c.table_name}.${c.column_name}`), ['analyses.failure', 'analyses.results', 'analyses.steps', 'events.data']);
        const [q] = await db.all<{ t: string }>("SELECT results #>> '{recognition,machineType}' AS t FROM analyses WHERE id = ?", [flow[0]!.subject]);
        assert.is(q?.t, 'excavator', 'results are queryable as jsonb');
      } finally {
        await db.close();
      }
    }
  });

  test('a NUL character inside event data is stored (jsonb on PostgreSQL refuses it: replaced there)', async (ctx) => {
    const e = analysisFlow('gw-a')[0]!;
    // The literal text "\u0000" (a backslash, then u0000) is not a NUL and must stay as it is.
    const ev = { ...storedEvent(e as unknown as CloudEvent, 'gw-a', 't1', new Date().toISOString()), data: { note: 'a\u0000b', path: 'C:\\u0000\\\u0000', ['k\u0000']: 1 } };
    assert.equal(await ctx.storage.recordEvents([{ event: ev, effects: {} }]), ['stored']);
    const [got] = (await ctx.storage.listEvents({ tenantId: 't1', gatewayId: 'gw-a', limit: 1 })).filter((x) => x.id === ev.id);
    const nul = ctx.storage.kind === 'postgres' ? '\ufffd' : '\u0000';
    assert.equal(got?.data, { note: `a${nul}b`, path: `C:\\u0000\\${nul}`, [`k${nul}`]: 1 });
  });

  test('retention: old events are deleted in small batches on the injected clock; recent ones and the dashboard rows stay', async (ctx) => {
    const { EventRetention } = await import('@tu/relay/internal/storage/retention');
    const { SqlStorage } = await import('@tu/relay/internal/storage/sql-storage');
    // A store of its own: retention deletes every old event, whoever stored it.
    const own = await ctx.openOld();
    const store = await SqlStorage.open(own.db);
    const now = Date.parse('2030-06-01T00:00:00Z');
    const day = 24 * 3600_000;
    const put = (evs: Envelope[], recv: number) =>
      store.recordEvents(evs.map((e) => ({ event: storedEvent(e as unknown as CloudEvent, 'gw-ret', 'tret', new Date(recv).toISOString()), effects: effectsOf(e as unknown as CloudEvent, 'gw-ret', 'tret') })));
    const old = analysisFlow('gw-ret', { machineId: 'R-1' });
    await put(old, now - 100 * day);
    const recent = analysisFlow('gw-ret', { machineId: 'R-2' });
    await put(recent, now - 10 * day);
    const deletes: number[] = [];
    const storage = { deleteEventsBefore: async (before: string, limit: number) => { const n = await store.deleteEventsBefore(before, limit); deletes.push(n); return n; } };
    const clock = new ManualClock(now);
    const r = new EventRetention({ storage, clock, logger: silentLogger() }, { eventsMaxAgeDays: 90, intervalMs: 60_000, batchSize: 2, maxBatchesPerRun: 100 });
    r.start();
    assert.equal(deletes, [], 'nothing before the first interval');
    clock.advance(60_000);
    await until(() => r.stats.runs === 1, 5000, 'first run');
    assert.equal(deletes, [2, 2, 1], 'batches of 2 until one comes back short');
    assert.is(await store.countEvents({ gatewayId: 'gw-ret' }), recent.length);
    assert.ok(await store.getMachine('tret', 'R-1'), 'machines stay');
    assert.ok(await store.getAnalysis('tret', old[0]!.subject), 'analyses stay');
    clock.advance(60_000);
    await until(() => r.stats.runs === 2, 5000, 'second run');
    assert.is(r.stats.deleted, old.length);
    await r.stop();
    const off = new EventRetention({ storage, clock, logger: silentLogger() }, { eventsMaxAgeDays: 0, intervalMs: 60_000, batchSize: 2, maxBatchesPerRun: 1 });
    assert.is(await off.runOnce(), 0, '0 days keeps events forever');
    await store.close();
    await own.cleanup();
  });

  test('retention deletes while ingest writes: neither waits for the other to finish', async (ctx) => {
    const put = (evs: Envelope[], recv: string) =>
      ctx.storage.recordEvents(evs.map((e) => ({ event: storedEvent(e as unknown as CloudEvent, 'gw-rc', 'trc', recv), effects: effectsOf(e as unknown as CloudEvent, 'gw-rc', 'trc') })));
    for (let i = 0; i < 20; i++) await put(analysisFlow('gw-rc', { machineId: `RC-${i}` }), '2001-01-01T00:00:00.000Z');
    const before = await ctx.storage.countEvents({ gatewayId: 'gw-rc' });
    const deleting = (async () => {
      let n = 0;
      for (let d = 1; d > 0; n += d) d = await ctx.storage.deleteEventsBefore('2002-01-01T00:00:00.000Z', 5);
      return n;
    })();
    const writing = Promise.all(Array.from({ length: 10 }, () => put(analysisFlow('gw-rc'), new Date().toISOString())));
    const [deleted] = await Promise.all([deleting, writing]);
    assert.is(deleted, before);
    assert.is(await ctx.storage.countEvents({ gatewayId: 'gw-rc' }), 10 * analysisFlow('gw-rc').length);
  });

  test('migration 007 moves embeddings stored inside results out of the analysis row', async (ctx) => {
    const { loadMigrations, migrate } = await import('@tu/relay/internal/storage/migrate');
    const { SqlStorage } = await import('@tu/relay/internal/storage/sql-storage');
    const old = await ctx.openOld();
    assert.equal(await migrate(old.db, loadMigrations().filter((m) => m.version <= 5)), [1, 2, 3, 4, 5]);
    await old.db.run(
      `INSERT INTO analyses (id, tenant_id, gateway_id, machine_id, status, results, sort_time) VALUES ('an-e', 'te', 'gw-e', 'M', 'completed', '{"recognition":{"machineType":"crane","embedding":[0.25,0.5]}}', '2024-01-01T00:00:00.000Z')`,
    );
    const s = await SqlStorage.open(old.db);
    try {
      assert.equal((await s.getAnalysis('te', 'an-e'))?.results, { recognition: { machineType: 'crane' } });
      assert.equal(await s.analysisEmbedding('te', 'an-e'), [0.25, 0.5]);
    } finally {
      await s.close();
      await old.cleanup();
    }
  });

  return test;
}

storageSuite('SQLite', async () => {
  const url = `sqlite:${path.join(tmpDir('tu-relay-store-'), 'relay.sqlite')}`;
  const openOld: OpenOld = async () => ({ db: openSqlite(path.join(tmpDir('tu-relay-old-'), 'relay.sqlite')), cleanup: async () => undefined });
  return { storage: await openStorage(url), url, cleanup: async () => undefined, openOld };
}).run();

storageSuite('PostgreSQL', async () => {
  const schema = pgSchemaName();
  const url = `${PG_BASE}?schema=${schema}`;
  const openOld: OpenOld = async () => {
    const old = pgSchemaName();
    return { db: await openPostgres(`${PG_BASE}?schema=${old}`), cleanup: () => dropPgSchema(old) };
  };
  return { storage: await openStorage(url), url, cleanup: () => dropPgSchema(schema), openOld };
}).run();

test3Migrators();

/** Three relay instances starting at once on a fresh PostgreSQL schema: each migration is applied once. */
function test3Migrators(): void {
  const t = suite('relay storage: three instances migrate a fresh database at once');
  t('PostgreSQL: the advisory lock serialises them; all see every migration, each applied once', async () => {
    const schema = pgSchemaName();
    const url = `${PG_BASE}?schema=${schema}`;
    try {
      const opened = await Promise.all([openStorage(url), openStorage(url), openStorage(url)]);
      const expected = (await opened[0]!.migrations()).length;
      assert.ok(expected >= 7);
      for (const s of opened) assert.is((await s.migrations()).length, expected);
      const db = await openPostgres(url);
      const rows = await db.all<{ n: number | string }>('SELECT count(*) AS n FROM schema_migrations');
      assert.is(Number(rows[0]!.n), expected);
      await db.close();
      for (const s of opened) await s.close();
    } finally {
      await dropPgSchema(schema);
    }
  });
  // SQLite is the single-machine store: several relay processes on one file are not a deployment
  // (and three connections in one process would block its event loop on each other's locks).
  t('SQLite: the dashboard queries use the indexes of migration 006', async () => {
    const file = path.join(tmpDir('tu-relay-plan-'), 'relay.sqlite');
    const s = await openStorage(`sqlite:${file}`);
    await s.close();
    const db = openSqlite(file);
    const plan = async (sql: string) => (await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, [])).map((r) => r.detail).join(' | ');
    assert.match(await plan("SELECT * FROM events WHERE tenant_id = 't' AND gateway_id = 'g' ORDER BY received_at DESC, time DESC, id DESC LIMIT 50"), /events_tenant_gateway_received/);
    assert.match(await plan("SELECT * FROM analyses WHERE tenant_id = 't' AND status = 'failed' ORDER BY sort_time DESC, id DESC LIMIT 50"), /analyses_tenant_status_sort/);
    assert.match(await plan("SELECT * FROM analyses WHERE tenant_id = 't' AND gateway_id = 'g' ORDER BY sort_time DESC, id DESC LIMIT 50"), /analyses_tenant_gateway_sort/);
    await db.close();
  });
  t.run();
}
