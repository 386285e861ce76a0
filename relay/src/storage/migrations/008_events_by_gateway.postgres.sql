-- Event ids are chosen by gateways, and are unique only among one gateway's events (its outbox
-- re-sends an event with the same id, which is how a duplicate is known). Keyed globally, an
-- event whose id another gateway had used first (by a bug, or on purpose, even in another
-- tenant) was taken for a duplicate: acknowledged, never stored, never shown. The key becomes
-- (gateway_id, id); PostgreSQL swaps the primary key in place, keeping jsonb and its compression
-- (migration 007). Building the new key's index holds the table's lock: on a large table,
-- migrate before the instances take traffic (docs/relay-deployment.md).
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (gateway_id, id);
