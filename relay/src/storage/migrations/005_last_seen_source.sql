-- Issue 8 finding 10: which time orders the machine's last_seen (and so its position, thumbnail
-- and recognition), and why, when the relay or the gateway refused a photo's own time.
-- last_seen_source: capture-time | upload-time | completed-time | gateway | relay-receipt
--   (relay/src/ingest/effects.ts, `seenTime`); NULL for rows stored before this migration.
-- last_seen_note: the refused time and the reason (NULL when the time was taken as given).
ALTER TABLE machines ADD COLUMN last_seen_source TEXT;
ALTER TABLE machines ADD COLUMN last_seen_note TEXT;
