-- The source system of seed 000's example: a case table the Database Capture Point
-- captures from and writes status back to, and a table of update requests.
-- SQLite; the same shape works on PostgreSQL, MySQL/MariaDB and any ODBC source.

CREATE TABLE IF NOT EXISTS cases (
    caseId           VARCHAR(64)  PRIMARY KEY,
    createdTimestamp TEXT         NOT NULL DEFAULT CURRENT_TIMESTAMP,
    casePriority     INTEGER      NOT NULL DEFAULT 0,
    caseDescr        VARCHAR(255),
    -- 'new' until captured; then written by the capture point's statements.
    status           VARCHAR(32)  NOT NULL DEFAULT 'new',
    substatus        VARCHAR(255),
    -- The task's InteractionId (brokerId), written by capturedUpdateSql.
    caseTrackingId   VARCHAR(32),
    errorCode        INTEGER,
    errorDescr       VARCHAR(256)
);
CREATE INDEX IF NOT EXISTS cases_status ON cases (status);

-- Update requests from the source system: each 'new' row changes one task.
CREATE TABLE IF NOT EXISTS case_updates (
    id               INTEGER      PRIMARY KEY AUTOINCREMENT,
    caseId           VARCHAR(64),
    updatedTimestamp TEXT         NOT NULL DEFAULT CURRENT_TIMESTAMP,
    casePriority     INTEGER,
    status           VARCHAR(32)  NOT NULL DEFAULT 'new',
    errorcode        INTEGER,
    errordescr       VARCHAR(256)
);
CREATE INDEX IF NOT EXISTS case_updates_status ON case_updates (status);
