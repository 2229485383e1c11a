DROP INDEX IF EXISTS advisory_linksets_expires_at;
