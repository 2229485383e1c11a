SELECT 'it''s; not', E'\'; still', "a;b", `c;d` FROM t; -- end; here
