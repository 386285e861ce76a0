-- Portable SQL (SQLite and PostgreSQL). JSON columns hold JSON text.
CREATE TABLE tenants (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT,
  created_at TEXT NOT NULL
);

CREATE TABLE gateways (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  name TEXT,
  secret_hash TEXT NOT NULL,
  online INTEGER NOT NULL DEFAULT 0,
  last_seen TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX gateways_tenant ON gateways (tenant_id, id);

CREATE TABLE events (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL,
  gateway_id TEXT NOT NULL,
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  time TEXT NOT NULL,
  received_at TEXT NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX events_gateway_time ON events (gateway_id, time);
CREATE INDEX events_received ON events (received_at);

CREATE TABLE machines (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL,
  gateway_id TEXT NOT NULL,
  type TEXT,
  brand TEXT,
  model TEXT,
  serial_number TEXT,
  name TEXT,
  last_seen TEXT,
  last_position TEXT,
  latest_thumbnail TEXT
);
CREATE INDEX machines_tenant ON machines (tenant_id, id);
CREATE INDEX machines_gateway ON machines (gateway_id, id);

CREATE TABLE analyses (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL,
  gateway_id TEXT NOT NULL,
  machine_id TEXT NOT NULL,
  status TEXT NOT NULL,
  steps TEXT,
  results TEXT,
  failure TEXT,
  started_at TEXT,
  ended_at TEXT,
  sort_time TEXT NOT NULL
);
CREATE INDEX analyses_tenant_sort ON analyses (tenant_id, sort_time, id);
CREATE INDEX analyses_machine_sort ON analyses (machine_id, sort_time, id);
