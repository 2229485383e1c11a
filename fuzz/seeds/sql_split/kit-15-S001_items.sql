INSERT INTO items (id, sku, name, price_cents) VALUES
    (1, 'BOLT-M6', 'Hex bolt M6 x 30', 12),
    (2, 'NUT-M6', 'Hex nut M6', 4),
    (3, 'WASHER-M6', 'Flat washer M6', 2),
    (4, 'BRKT-L40', 'Angle bracket 40 mm', 85),
    (5, 'HINGE-75', 'Butt hinge 75 mm', 240)
ON CONFLICT (sku) DO NOTHING;
