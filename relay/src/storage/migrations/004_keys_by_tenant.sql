-- Issue 8 finding 9: ids that gateways choose (machine ids, analysis ids, correction ids) are
-- unique within a tenant only. Keyed globally, tenant B's gateway registering machine
-- `EX-SQUAT-7` first made tenant A's machine of that id invisible to A (A's upsert hit B's row
-- and its `WHERE machines.tenant_id = excluded.tenant_id` left it untouched).
-- Neither engine changes a primary key in place portably, so each table is rebuilt keyed by
-- (tenant_id, id) and its rows copied over unchanged; the old indexes go with the old tables.
CREATE TABLE machines_by_tenant (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  gateway_id TEXT NOT NULL,
  type TEXT,
  brand TEXT,
  model TEXT,
  serial_number TEXT,
  name TEXT,
  last_seen TEXT,
  last_position TEXT,
  latest_thumbnail TEXT,
  registered_id TEXT,
  recognised_type TEXT,
  recognised_confidence DOUBLE PRECISION,
  recognised_analysis_id TEXT,
  type_match INTEGER,
  PRIMARY KEY (tenant_id, id)
);
INSERT INTO machines_by_tenant (tenant_id, id, gateway_id, type, brand, model, serial_number, name, last_seen, last_position, latest_thumbnail,
    registered_id, recognised_type, recognised_confidence, recognised_analysis_id, type_match)
  SELECT tenant_id, id, gateway_id, type, brand, model, serial_number, name, last_seen, last_position, latest_thumbnail,
    registered_id, recognised_type, recognised_confidence, recognised_analysis_id, type_match FROM machines;
DROP TABLE machines;
ALTER TABLE machines_by_tenant RENAME TO machines;
CREATE INDEX machines_gateway ON machines (tenant_id, gateway_id, id);

CREATE TABLE analyses_by_tenant (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  gateway_id TEXT NOT NULL,
  machine_id TEXT NOT NULL,
  status TEXT NOT NULL,
  steps TEXT,
  results TEXT,
  failure TEXT,
  started_at TEXT,
  ended_at TEXT,
  sort_time TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
INSERT INTO analyses_by_tenant (tenant_id, id, gateway_id, machine_id, status, steps, results, failure, started_at, ended_at, sort_time)
  SELECT tenant_id, id, gateway_id, machine_id, status, steps, results, failure, started_at, ended_at, sort_time FROM analyses;
DROP TABLE analyses;
ALTER TABLE analyses_by_tenant RENAME TO analyses;
CREATE INDEX analyses_tenant_sort ON analyses (tenant_id, sort_time, id);
-- A machine's analyses: the machine is (tenant_id, machine_id).
CREATE INDEX analyses_machine_sort ON analyses (tenant_id, machine_id, sort_time, id);

CREATE TABLE labelled_examples_by_tenant (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  gateway_id TEXT NOT NULL,
  analysis_id TEXT NOT NULL,
  machine_id TEXT,
  sha256 TEXT NOT NULL,
  embedding TEXT NOT NULL,
  label TEXT NOT NULL,
  previous_label TEXT NOT NULL,
  kind TEXT NOT NULL,
  by_whom TEXT NOT NULL,
  at TEXT NOT NULL,
  model_id TEXT NOT NULL,
  model_version TEXT NOT NULL,
  head_id TEXT,
  received_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
INSERT INTO labelled_examples_by_tenant (tenant_id, id, gateway_id, analysis_id, machine_id, sha256, embedding, label, previous_label, kind, by_whom, at,
    model_id, model_version, head_id, received_at)
  SELECT tenant_id, id, gateway_id, analysis_id, machine_id, sha256, embedding, label, previous_label, kind, by_whom, at,
    model_id, model_version, head_id, received_at FROM labelled_examples;
DROP TABLE labelled_examples;
ALTER TABLE labelled_examples_by_tenant RENAME TO labelled_examples;
CREATE INDEX labelled_examples_analysis ON labelled_examples (tenant_id, gateway_id, analysis_id, at, id);
CREATE INDEX labelled_examples_tenant_at ON labelled_examples (tenant_id, at, id);
