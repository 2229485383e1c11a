-- Demonstration linksets so that the backfill below has work to do.
INSERT INTO advisory_linksets (vuln_key, shard, created_at)
SELECT 'CVE-2026-' || lpad(g::text, 5, '0'), (g % 16)::smallint, TIMESTAMPTZ '2026-01-01' + g * INTERVAL '1 minute'
FROM generate_series(1, 2000) AS g
WHERE NOT EXISTS (SELECT 1 FROM advisory_linksets);
