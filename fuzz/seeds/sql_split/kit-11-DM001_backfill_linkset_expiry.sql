-- Undo the backfill: expiries derived from created_at go back to unknown.
UPDATE advisory_linksets SET expires_at = NULL
WHERE expires_at = created_at + INTERVAL '365 days';
