-- Issue 11: indexes for the dashboard's queries (relay/src/storage/sql-storage.ts), and the
-- photo embedding kept apart from the analysis row the dashboard reads.
-- listEvents with a gateway: tenant + gateway, newest received first.
CREATE INDEX events_tenant_gateway_received ON events (tenant_id, gateway_id, received_at, id);
-- listAnalyses filtered by gateway or by status (by machine: analyses_machine_sort, migration 004).
CREATE INDEX analyses_tenant_gateway_sort ON analyses (tenant_id, gateway_id, sort_time, id);
CREATE INDEX analyses_tenant_status_sort ON analyses (tenant_id, status, sort_time, id);
-- countEvents and retention (relay/src/storage/retention.ts) use events_gateway_time and
-- events_received (migration 001).

-- results.recognition.embedding (up to 4096 numbers) is stored here instead of in
-- analyses.results: the dashboard's lists and details never read it, the head refit does.
-- JSON array text on both engines.
CREATE TABLE analysis_embeddings (
  tenant_id TEXT NOT NULL,
  analysis_id TEXT NOT NULL,
  embedding TEXT NOT NULL,
  PRIMARY KEY (tenant_id, analysis_id)
);
