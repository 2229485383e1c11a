-- offkit:no-transaction
-- Built without blocking writers; runs outside a transaction under the runner's session lock.
CREATE INDEX CONCURRENTLY IF NOT EXISTS advisory_linksets_expires_at
    ON advisory_linksets (expires_at);
