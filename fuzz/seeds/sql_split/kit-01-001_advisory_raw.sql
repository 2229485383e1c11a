-- Raw advisory documents as received from each source (immutable, content-addressed).
CREATE TABLE IF NOT EXISTS advisory_raw (
    id           BIGSERIAL PRIMARY KEY,
    source       TEXT        NOT NULL,
    upstream_id  TEXT        NOT NULL,
    content_sha256 TEXT      NOT NULL,
    document     JSONB       NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (source, upstream_id, content_sha256)
);
