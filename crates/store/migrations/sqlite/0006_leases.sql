-- Leases of the parts that run once in a cluster: one holder per name until expires_at
-- (epoch microseconds); renewed by the holder, taken over by another node once expired.
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
