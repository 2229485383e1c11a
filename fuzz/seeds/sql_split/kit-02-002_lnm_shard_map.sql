-- Shard map for Link-Not-Merge observations: each source is pinned to one of 16 shards.
CREATE TABLE IF NOT EXISTS lnm_shard_map (
    source     TEXT PRIMARY KEY,
    shard      SMALLINT NOT NULL CHECK (shard BETWEEN 0 AND 15),
    ttl_days   INTEGER  NOT NULL DEFAULT 365 CHECK (ttl_days > 0)
);
