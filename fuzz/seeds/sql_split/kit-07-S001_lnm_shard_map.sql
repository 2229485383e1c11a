-- Reference data: shard and TTL of each advisory source.
INSERT INTO lnm_shard_map (source, shard, ttl_days) VALUES
    ('ghsa', 0, 730),
    ('osv', 1, 730),
    ('nvd', 2, 365),
    ('redhat', 3, 365),
    ('debian', 4, 365),
    ('ubuntu', 5, 365)
ON CONFLICT (source) DO NOTHING;
