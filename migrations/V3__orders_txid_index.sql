-- The warehouse sink reads every order of every path by inserting transaction, in pages keyed
-- by (txid, order_id): an index range scan per page, whatever the table's size. The existing
-- (version, txid) index serves the v1 aggregator, which reads one version.
CREATE INDEX IF NOT EXISTS orders_txid_order_id ON orders (txid, order_id);
