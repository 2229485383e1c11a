CREATE TABLE stock (
    item_id  INTEGER NOT NULL REFERENCES items (id),
    site     TEXT    NOT NULL,
    quantity INTEGER NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    PRIMARY KEY (item_id, site)
);
