-- Linksets: groups of observations that refer to the same vulnerability, never merged.
CREATE TABLE IF NOT EXISTS advisory_linksets (
    id          BIGSERIAL PRIMARY KEY,
    vuln_key    TEXT        NOT NULL,
    shard       SMALLINT    NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    observation_ids BIGINT[] NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS advisory_linksets_vuln_key ON advisory_linksets (vuln_key);
