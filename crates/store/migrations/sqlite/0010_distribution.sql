-- Distribution (SPEC 9). A Distributed task's live push offer is kept on its row: the
-- agent it is offered to and when it expires, each in a small partial index (offers
-- that time out are claimed from the second; an agent's offers are read from the first).
ALTER TABLE tasks ADD COLUMN offered_to TEXT;
ALTER TABLE tasks ADD COLUMN offer_expires_at INTEGER;
CREATE INDEX tasks_offered_to ON tasks (offered_to) WHERE offered_to IS NOT NULL;
CREATE INDEX tasks_offer_expiry ON tasks (offer_expires_at) WHERE offer_expires_at IS NOT NULL;
-- Pull and offers read one queue's tasks that no agent holds, best first.
CREATE INDEX tasks_queue_claim ON tasks (queue, priority DESC, (COALESCE(due_at, 9223372036854775807)), broker_id)
    WHERE status = 'Distributed' AND offered_to IS NULL;

-- Agents: the body holds the whole agent; state and waiting_since order push offers
-- (the Ready agent waiting longest first).
CREATE TABLE agents (
    id            TEXT    PRIMARY KEY,
    state         TEXT    NOT NULL,
    waiting_since INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    body          TEXT    NOT NULL
);
CREATE INDEX agents_ready ON agents (waiting_since, id) WHERE state = 'Ready';
