-- With statistics that saw no Assigned task (a backlog just loaded and analyzed), the
-- planner counted an agent's Assigned tasks (every pull does) by stepping through every
-- Assigned entry of tasks_claim, status first, and filtering by user, rather than reading
-- the agent's own entries in tasks_assigned: 0.8 ms for one agent, growing with the work
-- in progress, and 13 of the 90 s PostgreSQL spent in a 2-node `bench distribute`.
-- Assigned tasks are read by their holder, never claimed by priority, so tasks_claim no
-- longer holds them: the wrong plan cannot be chosen, and each pull writes one index entry
-- less. Queries name their status as a literal, so the planner sees that every other
-- status implies this predicate.
DROP INDEX tasks_claim;
CREATE INDEX tasks_claim ON tasks (status, priority DESC, due_at, broker_id)
    WHERE status <> 'Assigned';
