-- Issue 11, SQLite: JSON stays text (007_results_jsonb.postgres.sql turns it into jsonb on
-- PostgreSQL). Embeddings already stored inside analyses.results move to analysis_embeddings.
INSERT INTO analysis_embeddings (tenant_id, analysis_id, embedding)
  SELECT tenant_id, id, json_extract(results, '$.recognition.embedding') FROM analyses
  WHERE json_type(results, '$.recognition.embedding') = 'array'
  ON CONFLICT (tenant_id, analysis_id) DO NOTHING;
UPDATE analyses SET results = json_remove(results, '$.recognition.embedding') WHERE json_type(results, '$.recognition.embedding') IS NOT NULL;
