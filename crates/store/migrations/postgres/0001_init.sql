-- Tasks: indexed columns for filters and ordering, the whole task as JSON in `body`.
CREATE TABLE tasks (
    broker_id        BIGINT  PRIMARY KEY,
    capture_point_id TEXT    NOT NULL,
    capture_id       TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    process_id       TEXT,
    queue            TEXT,
    assigned_to_user TEXT,
    activation_at    BIGINT,
    due_at           BIGINT,
    expiration_at    BIGINT,
    version          BIGINT  NOT NULL,
    body             TEXT    NOT NULL
);
CREATE SEQUENCE tasks_broker_id_seq OWNED BY tasks.broker_id;
CREATE INDEX tasks_capture ON tasks (capture_point_id, capture_id);
CREATE INDEX tasks_status_priority ON tasks (status, priority DESC, broker_id);
CREATE INDEX tasks_status_activation ON tasks (status, activation_at);
CREATE INDEX tasks_process ON tasks (process_id, broker_id);
CREATE INDEX tasks_queue ON tasks (queue, broker_id);
CREATE INDEX tasks_user ON tasks (assigned_to_user, broker_id);
CREATE INDEX tasks_due ON tasks (due_at);
CREATE INDEX tasks_expiration ON tasks (expiration_at) WHERE expiration_at IS NOT NULL;

-- The one ordered event log. Writers take an advisory lock, so seq order is commit order.
CREATE TABLE events (
    seq              BIGSERIAL PRIMARY KEY,
    broker_id        BIGINT  NOT NULL,
    capture_point_id TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    body             TEXT    NOT NULL
);
CREATE INDEX events_task ON events (broker_id, seq);

CREATE TABLE cursors (
    consumer   TEXT   PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE requests (
    key        TEXT   PRIMARY KEY,
    result     TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
