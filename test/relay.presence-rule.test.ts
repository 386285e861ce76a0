/**
 * The one presence rule GraphQL and `gateways list` share (relay/src/ingest/shown-presence.ts),
 * case by case; test/relay.cli-presence.test.ts runs it end to end (kill -9, Redis away).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shownPresence } from '@tu/relay/internal/ingest/shown-presence';

const T0 = '2026-06-01T08:00:00.000Z';
const T1 = '2026-06-01T09:00:00.000Z';
const storedOnline = { online: true, lastSeen: T0 };

test('Redis answered: its status wins over a stored "online" (an instance that died never wrote "offline"); last seen is the later one', () => {
  assert.equal(shownPresence(storedOnline, { online: false, lastSeen: T1 }), { online: false, lastSeen: T1, known: true });
  assert.equal(shownPresence(storedOnline, { online: false, lastSeen: T0 }, { online: true, lastSeen: T1 }), { online: false, lastSeen: T1, known: true }, "the shared status, not this instance's");
});

test('a hash without a status (Redis lost its data): a connection held by the asker says online, else the stored row', () => {
  assert.equal(shownPresence({ online: false, lastSeen: null }, { lastSeen: T1 }, { online: true, holds: true }), { online: true, lastSeen: T1, known: true });
  assert.equal(shownPresence(storedOnline, {}, { online: false }), { online: true, lastSeen: T0, known: true }, 'not the non-holder\'s "offline"');
  assert.equal(shownPresence(storedOnline, {}), { online: true, lastSeen: T0, known: true }, 'the CLI: no view of its own');
});

test('no Redis configured: the asker\'s view, else the stored row; Redis configured and not answering: the same, marked not known', () => {
  assert.equal(shownPresence(storedOnline, undefined, { online: false }), { online: false, lastSeen: T0, known: true });
  assert.equal(shownPresence(storedOnline, undefined), { online: true, lastSeen: T0, known: true });
  assert.equal(shownPresence(storedOnline, 'unavailable', { online: false, lastSeen: T1 }), { online: false, lastSeen: T1, known: false });
  assert.equal(shownPresence(storedOnline, 'unavailable'), { online: true, lastSeen: T0, known: false }, 'the CLI prints "unknown" for it');
});

test.run();
