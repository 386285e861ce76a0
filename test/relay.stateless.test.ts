/**
 * Stateless relay instances (issue 11, DESIGN §6): two relays sharing PostgreSQL (a schema of
 * this test) and Redis (keys under a prefix of this test, deleted after). Presence and the
 * duplicate window live in Redis, so either instance answers for a gateway the other one saw.
 * Both run on one injected clock (the instances' clocks agree), moved by the test where time matters.
 */
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ManualClock } from '@tu/shared';
import { generateSecret, hashSecret, verifiedLoginKey, type Relay } from '@tu/relay';
import { tmpDir, until } from './support/harness.js';
import { freePort, startProcess, stopProcess } from './support/processes.js';
import { addGateway, analysisFlow, connectGateway, deleteRedisKeys, dropPgSchema, gql, JWT_SECRET, PG_BASE, pgSchemaName, publishEvent, startTestRelay, subscribeEvents, tokenFor } from './support/relay.js';

const REDIS = process.env.TU_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

type Ctx = { a: Relay; b: Relay; clock: ManualClock; schema: string; prefix: string; tenant: string; token: string };
const test = suite<Ctx>('relay: stateless instances (presence and duplicate window in Redis, storage in PostgreSQL)');

test.before(async (ctx) => {
  ctx.clock = new ManualClock(Date.UTC(2026, 5, 1, 8, 0, 0));
  ctx.schema = pgSchemaName();
  ctx.prefix = `tu:test:${process.pid}:${randomBytes(4).toString('hex')}:`;
  const overrides = { 'storage.url': `${PG_BASE}?schema=${ctx.schema}`, 'redis.url': REDIS, 'redis.keyPrefix': ctx.prefix };
  ctx.a = await startTestRelay({ overrides, clock: ctx.clock });
  ctx.b = await startTestRelay({ overrides, clock: ctx.clock });
  ctx.tenant = `stateless-${process.pid}`;
  await ctx.a.registry.addTenant(ctx.tenant);
  ctx.token = await tokenFor(ctx.tenant);
});

test.after(async (ctx) => {
  await ctx.a?.stop();
  await ctx.b?.stop();
  await dropPgSchema(ctx.schema);
  await deleteRedisKeys(REDIS, ctx.prefix);
});

const presenceVia = async (relay: Relay, ctx: Ctx, id: string): Promise<{ online: boolean | null; lastSeen: string | null }> => {
  const r = await gql<{ gateway: { online: boolean | null; lastSeen: string | null } }>(relay, ctx.token, 'query ($id: ID!) { gateway(id: $id) { online lastSeen } }', { id });
  assert.ok(r.data?.gateway, JSON.stringify(r));
  return r.data.gateway;
};

/** Polls until the instance's GraphQL answers `want` (shared writes are not awaited by the ingress). */
async function expectPresence(relay: Relay, ctx: Ctx, id: string, want: { online: boolean; lastSeen?: number }, what: string): Promise<void> {
  const end = Date.now() + 5000;
  let got = await presenceVia(relay, ctx, id);
  const ok = () => got.online === want.online && (want.lastSeen === undefined || got.lastSeen === new Date(want.lastSeen).toISOString());
  while (!ok() && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 10));
    got = await presenceVia(relay, ctx, id);
  }
  assert.equal({ online: got.online, ...(want.lastSeen !== undefined ? { lastSeen: got.lastSeen } : {}) }, { online: want.online, ...(want.lastSeen !== undefined ? { lastSeen: new Date(want.lastSeen).toISOString() } : {}) }, what);
}

test('a gateway connected to instance A is online through instance B, and offline there once it leaves A', async (ctx) => {
  const id = 'gw-sl-presence';
  const secret = await addGateway(ctx.a, id, ctx.tenant);
  const connectedAt = ctx.clock.now();
  const gw = await connectGateway(ctx.a.mqttUrl, id, secret);
  // B never saw the connection: on its own (embedded, authoritative) it would say offline.
  assert.is(ctx.b.deps.presence.online(id), false);
  await expectPresence(ctx.b, ctx, id, { online: true, lastSeen: connectedAt }, 'online through B');
  ctx.clock.advance(60_000);
  const leftAt = ctx.clock.now();
  gw.end(true);
  await expectPresence(ctx.b, ctx, id, { online: false, lastSeen: leftAt }, 'offline through B');
  await expectPresence(ctx.a, ctx, id, { online: false, lastSeen: leftAt }, 'offline through A');
});

test("a stale connection dropped late by instance A does not take offline a gateway that reconnected to B", async (ctx) => {
  const id = 'gw-sl-moved';
  const secret = await addGateway(ctx.a, id, ctx.tenant);
  // Its connection to A died unnoticed (a lost cellular link); it reconnects through the load balancer to B.
  const old = await connectGateway(ctx.a.mqttUrl, id, secret);
  ctx.clock.advance(1000);
  const fresh = await connectGateway(ctx.b.mqttUrl, id, secret);
  await expectPresence(ctx.a, ctx, id, { online: true }, 'online');
  // A notices the dead connection only now (keepalive), with a newer time than B's "online".
  ctx.clock.advance(30_000);
  old.end(true);
  await until(() => ctx.a.deps.presence.online(id) === false, 3000, 'A saw its connection go');
  await new Promise((r) => setTimeout(r, 100));
  for (const [name, relay] of [['A', ctx.a], ['B', ctx.b]] as const) await expectPresence(relay, ctx, id, { online: true }, `still online through ${name}`);
  // When the connection on B ends, that does apply.
  ctx.clock.advance(1000);
  fresh.end(true);
  await expectPresence(ctx.a, ctx, id, { online: false }, 'offline once it left B');
});

test('an older status handled after a newer one does not flip it, on either instance', async (ctx) => {
  const id = 'gw-sl-order';
  await addGateway(ctx.a, id, ctx.tenant);
  // External-mode statuses (relay/src/ingress/external.ts calls presence.status), handled by different instances.
  const t0 = ctx.clock.now();
  ctx.b.deps.presence.status(id, false, new Date(t0 + 2000)); // the last will, handled first by B
  await expectPresence(ctx.a, ctx, id, { online: false, lastSeen: t0 + 2000 }, 'offline, through A');
  ctx.a.deps.presence.status(id, true, new Date(t0 + 1000)); // the older "online", redelivered late to A
  ctx.b.deps.presence.status(id, true, new Date(t0 + 1000)); // and to B
  // Each instance reads on the Redis connection it wrote the stale status on, so the reads come after those writes.
  for (const [name, relay] of [['A', ctx.a], ['B', ctx.b]] as const) await expectPresence(relay, ctx, id, { online: false, lastSeen: t0 + 2000 }, `still offline through ${name}`);
  // A newer status does apply (the guard is by time, not by instance).
  ctx.a.deps.presence.status(id, true, new Date(t0 + 3000));
  await expectPresence(ctx.b, ctx, id, { online: true, lastSeen: t0 + 3000 }, 'the newer status through B');
});

test('last seen moves with events received by either instance', async (ctx) => {
  const id = 'gw-sl-seen';
  const secret = await addGateway(ctx.a, id, ctx.tenant);
  const toA = await connectGateway(ctx.a.mqttUrl, id, secret);
  const toB = await connectGateway(ctx.b.mqttUrl, id, secret);
  try {
    const [e1, e2] = analysisFlow(id);
    ctx.clock.advance(30_000);
    const atA = ctx.clock.now();
    assert.is(await publishEvent(toA, id, e1!), 'ok');
    await expectPresence(ctx.b, ctx, id, { online: true, lastSeen: atA }, 'the event on A, through B');
    ctx.clock.advance(30_000);
    const atB = ctx.clock.now();
    assert.is(await publishEvent(toB, id, e2!), 'ok');
    await expectPresence(ctx.a, ctx, id, { online: true, lastSeen: atB }, 'the event on B, through A');
  } finally {
    toA.end(true);
    toB.end(true);
  }
});

test('one event id delivered to both instances fans out once to a subscriber on each, and is stored once', async (ctx) => {
  const id = 'gw-sl-dedup';
  const secret = await addGateway(ctx.a, id, ctx.tenant);
  const subA = await subscribeEvents(ctx.a, ctx.token, id);
  const subB = await subscribeEvents(ctx.b, ctx.token, id);
  const toA = await connectGateway(ctx.a.mqttUrl, id, secret);
  const toB = await connectGateway(ctx.b.mqttUrl, id, secret);
  try {
    const [twice, marker] = analysisFlow(id);
    const before = { a: ctx.a.deps.ingest.stats.sharedDuplicates, b: ctx.b.deps.ingest.stats.sharedDuplicates };
    // The broker's redelivery to another instance: the same event reaches A and B at once.
    assert.equal(await Promise.all([publishEvent(toA, id, twice!), publishEvent(toB, id, twice!)]), ['ok', 'ok'], 'both acknowledged (once stored)');
    // A later event, so everything before it has been fanned out when it arrives.
    assert.is(await publishEvent(toA, id, marker!), 'ok');
    await subA.waitFor(2);
    await subB.waitFor(2);
    for (const [name, sub] of [['A', subA], ['B', subB]] as const) assert.equal(sub.events.map((e) => e.id), [twice!.id, marker!.id], `the subscriber on ${name}`);
    const sharedDuplicates = ctx.a.deps.ingest.stats.sharedDuplicates - before.a + (ctx.b.deps.ingest.stats.sharedDuplicates - before.b);
    assert.is(sharedDuplicates, 1, 'one instance claimed it, the other stood back');
    const db = new pg.Client({ connectionString: PG_BASE });
    await db.connect();
    try {
      const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${ctx.schema}.events WHERE id = $1`, [twice!.id]);
      assert.is(Number(r.rows[0]!.n), 1, 'stored once');
    } finally {
      await db.end();
    }
  } finally {
    toA.end(true);
    toB.end(true);
    await subA.close();
    await subB.close();
  }
});

test('a login verified by instance A lets the gateway into instance B without scrypt; a wrong, rotated or revoked secret gets nothing from it', async (ctx) => {
  const id = 'gw-sl-login';
  const secret = await addGateway(ctx.a, id, ctx.tenant);
  const stats = () => ({ a: { ...ctx.a.deps.registry.loginStats }, b: { ...ctx.b.deps.registry.loginStats } });
  const s0 = stats();
  const redis = new Redis(REDIS);
  try {
    // Other tests' gateways logged in too: their tags are not this one's.
    const earlier = new Set(await redis.keys(`${ctx.prefix}v:*`));
    (await connectGateway(ctx.a.mqttUrl, id, secret)).end(true);
    assert.is(ctx.a.deps.registry.loginStats.scrypt - s0.a.scrypt, 1, 'A ran scrypt once');
    // A shares the tag without waiting for Redis: poll (bounded) until it is there.
    let tags: string[] = [];
    for (let i = 0; i < 100 && tags.length === 0; i++) {
      tags = (await redis.keys(`${ctx.prefix}v:*`)).filter((k) => !earlier.has(k));
      if (tags.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.is(tags.length, 1, 'one shared tag');
    // The tag is keyed with what the instances share (here jwt.secret), not a plain hash of the login.
    const row = await ctx.a.storage.getGateway(id);
    const keyed = createHmac('sha256', verifiedLoginKey(JWT_SECRET)).update(`${id}\0${secret}\0${row!.secretHash}`).digest('base64url');
    assert.is(tags[0], `${ctx.prefix}v:${keyed}`, 'HMAC(key from jwt.secret, id, secret, stored hash)');

    (await connectGateway(ctx.b.mqttUrl, id, secret)).end(true);
    (await connectGateway(ctx.b.mqttUrl, id, secret)).end(true);
    const s1 = stats();
    assert.equal({ scrypt: s1.b.scrypt - s0.b.scrypt, shared: s1.b.shared - s0.b.shared, memory: s1.b.memory - s0.b.memory }, { scrypt: 0, shared: 1, memory: 1 }, 'B: first from the shared tag, then from its memory');

    // A wrong secret finds no tag: scrypt, refused.
    const wrong = await connectGateway(ctx.b.mqttUrl, id, `${secret}x`).then(
      (c) => (c.end(true), 'connected'),
      (err: Error) => err.message,
    );
    assert.match(wrong, /Bad username or password|Not authorized/i);
    const s2 = stats();
    assert.equal({ scrypt: s2.b.scrypt - s1.b.scrypt, refused: s2.b.refused - s1.b.refused }, { scrypt: 1, refused: 1 }, 'the wrong secret cost a scrypt and was refused');

    // A new secret, stored through A: B, which holds the old secret in its memory and in the
    // shared tag, refuses the old one at the next connection (both tags name the old stored hash).
    const newSecret = generateSecret();
    assert.ok(await ctx.a.storage.setGatewaySecretHash(id, await hashSecret(newSecret)));
    const refused = async (s: string) =>
      connectGateway(ctx.b.mqttUrl, id, s).then(
        (c) => (c.end(true), 'connected'),
        (err: Error) => err.message,
      );
    assert.match(await refused(secret), /Bad username or password|Not authorized/i, 'the old secret, after rotation');
    (await connectGateway(ctx.b.mqttUrl, id, newSecret)).end(true);
    // Revoked through A: B refuses the gateway at its next connection, though it verified the secret before.
    assert.ok(await ctx.a.registry.revoke(id));
    assert.match(await refused(newSecret), /Bad username or password|Not authorized/i, 'revoked');
    assert.is(await ctx.b.registry.authenticateFresh(id, newSecret, { onlyKnown: true }), undefined, 'revoked: not known to the broker auth either');
  } finally {
    await new Promise((resolve) => {
      redis.once('end', resolve);
      void redis.quit();
    });
  }
});

test('a gateway connected to an instance that dies (kill -9) reads offline through the others once its liveness lapses', async (ctx) => {
  const id = 'gw-sl-crash';
  const secret = await addGateway(ctx.a, id, ctx.tenant);
  const dir = tmpDir('tu-relay-crash-');
  const mqttPort = await freePort();
  const config = {
    dataDir: dir,
    log: { level: 'silent' },
    http: { host: '127.0.0.1', port: 0 },
    ingress: { host: '127.0.0.1', port: mqttPort },
    storage: { url: `${PG_BASE}?schema=${ctx.schema}` },
    redis: { url: REDIS, keyPrefix: ctx.prefix, livenessMs: 1000 },
    jwt: { secret: JWT_SECRET },
  };
  fs.writeFileSync(path.join(dir, 'relay.json'), JSON.stringify(config));
  const c = await startProcess('relay/dist/main.js', ['--config', path.join(dir, 'relay.json')], 'relay: ');
  try {
    const gw = await connectGateway(`mqtt://127.0.0.1:${mqttPort}`, id, secret);
    gw.on('error', () => undefined);
    await expectPresence(ctx.b, ctx, id, { online: true }, 'online through B while C holds the connection');
    // No clean stop: C never writes the gateway's "offline".
    await stopProcess(c, 'SIGKILL');
    await expectPresence(ctx.b, ctx, id, { online: false }, 'offline through B once C is gone');
    gw.end(true);
  } finally {
    await stopProcess(c, 'SIGKILL');
  }
});

test.run();
