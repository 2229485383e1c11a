UPDATE t SET x = 1 WHERE id IN (SELECT id FROM t WHERE x IS NULL LIMIT :batch_size); SELECT '::batch_size', x::batch_size, :batch_sizes;
