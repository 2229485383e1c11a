UPDATE items SET name_search = lower(name)
WHERE id IN (SELECT id FROM items WHERE name_search IS NULL ORDER BY id LIMIT :batch_size);
