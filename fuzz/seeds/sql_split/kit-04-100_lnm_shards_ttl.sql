-- Release 21.103: observations are partitioned by shard and expire after their source's TTL.
CREATE TABLE advisory_observations (
    id          BIGSERIAL,
    shard       SMALLINT    NOT NULL,
    raw_id      BIGINT      NOT NULL,
    vuln_key    TEXT        NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ,
    PRIMARY KEY (shard, id)
) PARTITION BY LIST (shard);

CREATE TABLE advisory_observations_s00_07 PARTITION OF advisory_observations
    FOR VALUES IN (0, 1, 2, 3, 4, 5, 6, 7);
CREATE TABLE advisory_observations_s08_15 PARTITION OF advisory_observations
    FOR VALUES IN (8, 9, 10, 11, 12, 13, 14, 15);

ALTER TABLE advisory_linksets ADD COLUMN expires_at TIMESTAMPTZ;
