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
-- The large JSON columns are TOASTed; lz4 compresses them about twice as fast as the default
-- pglz (measured with the relay bench's analysis.completed rows), which is write throughput.
-- Only where the server has it (PostgreSQL 14+ built with lz4); new rows only.
DO $$
BEGIN
  IF current_setting('server_version_num')::int >= 140000 THEN
    BEGIN
      ALTER TABLE events ALTER COLUMN data SET COMPRESSION lz4;
      ALTER TABLE analyses ALTER COLUMN results SET COMPRESSION lz4;
      ALTER TABLE analysis_embeddings ALTER COLUMN embedding SET COMPRESSION lz4;
      ALTER TABLE labelled_examples ALTER COLUMN embedding SET COMPRESSION lz4;
    EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
      NULL;
    END;
  END IF;
END
$$;
