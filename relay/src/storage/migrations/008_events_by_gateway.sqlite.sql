-- Event ids are unique only among one gateway's events (008_events_by_gateway.postgres.sql says
-- why). SQLite cannot change a primary key in place, so the table is rebuilt keyed by
-- (gateway_id, id), its rows copied over unchanged, and its indexes made again.
CREATE TABLE events_by_gateway (
  id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  gateway_id TEXT NOT NULL,
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  time TEXT NOT NULL,
  received_at TEXT NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (gateway_id, id)
);
INSERT INTO events_by_gateway (id, tenant_id, gateway_id, type, subject, time, received_at, data)
  SELECT id, tenant_id, gateway_id, type, subject, time, received_at, data FROM events;
DROP TABLE events;
ALTER TABLE events_by_gateway RENAME TO events;
CREATE INDEX events_gateway_time ON events (gateway_id, time);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_tenant_received ON events (tenant_id, received_at, id);
CREATE INDEX events_tenant_gateway_received ON events (tenant_id, gateway_id, received_at, id);
