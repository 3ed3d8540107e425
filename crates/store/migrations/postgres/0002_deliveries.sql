-- Pending and finished HTTP notifications, one row per (target, event). The body, its
-- GUID and its timestamp are fixed when the row is written, so every retry is identical.
-- The body lives in its own table, written once: the many updates of a delivery's state
-- then never rewrite it.
CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    target           TEXT    NOT NULL,
    seq              BIGINT  NOT NULL,
    broker_id        BIGINT  NOT NULL,
    event_type       TEXT    NOT NULL,
    guid             TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    status           TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    leased           BOOLEAN NOT NULL DEFAULT FALSE,
    last_status_code BIGINT,
    last_error       TEXT,
    updated_at       BIGINT  NOT NULL
);
-- One notification per event and target: re-reading the log after a crash adds nothing.
CREATE UNIQUE INDEX deliveries_target_seq ON deliveries (target, seq);
CREATE INDEX deliveries_due ON deliveries (target, next_attempt_at) WHERE status = 'pending';
-- Per-task order: a task's next notification waits for its earlier pending ones.
CREATE INDEX deliveries_task ON deliveries (target, broker_id, seq) WHERE status = 'pending';
CREATE INDEX deliveries_status ON deliveries (target, status, id);

CREATE TABLE delivery_bodies (
    id   BIGINT  PRIMARY KEY,
    body BYTEA   NOT NULL
);

CREATE TABLE delivery_attempts (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  BIGINT  NOT NULL,
    attempted_at BIGINT  NOT NULL,
    status_code  BIGINT,
    latency_us   BIGINT  NOT NULL,
    error        TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);

-- A replay asked for through the API, picked up by the target's running notifier.
CREATE TABLE delivery_replays (
    target       TEXT    PRIMARY KEY,
    from_seq     BIGINT  NOT NULL,
    requested_at BIGINT  NOT NULL
);
