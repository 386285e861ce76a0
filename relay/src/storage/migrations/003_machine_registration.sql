-- Issue 9: the registered machine reaches the relay, and a photo's recognition is evidence
-- beside the registered type instead of overwriting it.
-- registered_id: the id the technician registered on the gateway (PUT /api/v1/machine).
-- recognised_*: the latest photo's recognition (moves forward with last_seen, like the thumbnail).
-- type_match: the gateway's type check of that photo (1 agrees, 0 disagrees, NULL not judged).
-- Rows written before this migration may hold a recognised type in `type`; the next analysis
-- of a gateway that has a registered type replaces it.
ALTER TABLE machines ADD COLUMN registered_id TEXT;
ALTER TABLE machines ADD COLUMN recognised_type TEXT;
ALTER TABLE machines ADD COLUMN recognised_confidence DOUBLE PRECISION;
ALTER TABLE machines ADD COLUMN recognised_analysis_id TEXT;
ALTER TABLE machines ADD COLUMN type_match INTEGER;
-- The dashboard's recent events (live feed after a reload): newest first per tenant.
CREATE INDEX events_tenant_received ON events (tenant_id, received_at, id);
