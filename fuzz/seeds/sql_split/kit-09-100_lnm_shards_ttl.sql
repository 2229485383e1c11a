ALTER TABLE advisory_linksets DROP COLUMN IF EXISTS expires_at;
DROP TABLE IF EXISTS advisory_observations;
