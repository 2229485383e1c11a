-- Backfill expires_at for linksets created before release 21.103, :batch_size rows at a time.
UPDATE advisory_linksets
SET expires_at = created_at + INTERVAL '365 days'
WHERE id IN (
    SELECT id FROM advisory_linksets
    WHERE expires_at IS NULL
    ORDER BY id
    LIMIT :batch_size
);
