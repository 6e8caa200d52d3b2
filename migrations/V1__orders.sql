-- Every accepted order, whichever path it came by. The primary key is the idempotency key.
CREATE TABLE orders (
    order_id    uuid        PRIMARY KEY,
    version     text        NOT NULL CHECK (version IN ('v1', 'v2', 'v3')),
    drink       text        NOT NULL,
    store       text        NOT NULL,
    price_cents bigint      NOT NULL CHECK (price_cents > 0 AND price_cents <= 100000),
    ordered_at  timestamptz NOT NULL,
    accepted_at timestamptz NOT NULL,
    -- The inserting transaction. The v1 aggregator's incremental mode reads rows whose
    -- transaction is older than its snapshot's xmin, so rows that commit out of order are
    -- never skipped (a timestamp or serial watermark would skip them).
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX orders_version_txid ON orders (version, txid);
CREATE INDEX orders_version_accepted ON orders (version, accepted_at DESC);

-- How far each writer (a v2 worker, a v3 partition) has committed. `seq` numbers the
-- writer's outbox entries; `log_offset` is the last consumed log position (Kafka offset).
CREATE TABLE sink_positions (
    source     text   PRIMARY KEY,
    seq        bigint NOT NULL DEFAULT 0,
    log_offset bigint
);

-- Metric deltas committed in the same transaction as the orders they count, waiting to be
-- applied to Redis. PostgreSQL is the single commit point; Redis applies each (source, seq)
-- once, guarded by a fence, and the row is deleted after.
CREATE TABLE metrics_outbox (
    source     text        NOT NULL,
    seq        bigint      NOT NULL,
    version    text        NOT NULL,
    delta      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, seq)
);
