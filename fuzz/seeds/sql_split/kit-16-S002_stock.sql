INSERT INTO stock (item_id, site, quantity) VALUES
    (1, 'north', 1200), (2, 'north', 3400), (3, 'north', 5000),
    (4, 'south', 60), (5, 'south', 25)
ON CONFLICT (item_id, site) DO NOTHING;
