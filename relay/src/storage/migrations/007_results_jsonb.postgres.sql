-- Issue 11, PostgreSQL only: JSON columns become jsonb (validated once on write, queryable, and
-- smaller once TOASTed). SQLite keeps JSON text (007_results_jsonb.sqlite.sql).
-- Embeddings already stored inside analyses.results move to analysis_embeddings (migration 006).
ALTER TABLE events ALTER COLUMN data TYPE jsonb USING data::jsonb;
ALTER TABLE analyses ALTER COLUMN steps TYPE jsonb USING steps::jsonb;
ALTER TABLE analyses ALTER COLUMN results TYPE jsonb USING results::jsonb;
ALTER TABLE analyses ALTER COLUMN failure TYPE jsonb USING failure::jsonb;
INSERT INTO analysis_embeddings (tenant_id, analysis_id, embedding)
  SELECT tenant_id, id, (results #> '{recognition,embedding}')::text FROM analyses
  WHERE jsonb_typeof(results #> '{recognition,embedding}') = 'array'
  ON CONFLICT (tenant_id, analysis_id) DO NOTHING;
UPDATE analyses SET results = results #- '{recognition,embedding}' WHERE results #> '{recognition,embedding}' IS NOT NULL;
