-- Every pull and every offer writes its agent's row (waiting_since, version, body). With
-- waiting_since in agents_ready, each such write was a non-HOT update: a new entry in
-- both of the table's indexes and a dead row version that only VACUUM removes, so with
-- a thousand agents and tens of thousands of pulls, reading the Ready agents (every
-- distribution pass) and locking an agent (every pull) stepped over ever more dead
-- versions. The index now holds the id alone, so a write that keeps the agent's state
-- is a HOT update: no index entry, and the page's old versions are pruned in place.
-- Half of each page is left free for those updates. Ready agents are few enough to sort
-- by waiting_since after reading them.
ALTER TABLE agents SET (fillfactor = 50);
DROP INDEX agents_ready;
CREATE INDEX agents_ready ON agents (id) WHERE state = 'Ready';
