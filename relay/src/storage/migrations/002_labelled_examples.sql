-- Technicians' labels forwarded by gateways (`recognition.labelled`, issue 13 part 4).
-- One row per correction id (idempotent); a relabel of the same analysis is a new row, and
-- queries use only the newest per (gateway_id, analysis_id). Embedding: JSON array text.
CREATE TABLE labelled_examples (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL,
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
  received_at TEXT NOT NULL
);
CREATE INDEX labelled_examples_analysis ON labelled_examples (gateway_id, analysis_id, at, id);
CREATE INDEX labelled_examples_tenant_at ON labelled_examples (tenant_id, at, id);
