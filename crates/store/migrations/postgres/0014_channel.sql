-- The channel of a task as a column, in the two indexes that find what an agent holds:
-- counting an agent's load (every pull and every push pass) then reads only the index,
-- where it parsed the JSON body of every offered and Assigned task.
ALTER TABLE tasks ADD COLUMN channel TEXT;
UPDATE tasks SET channel = body::json ->> 'channel'
    WHERE body::json ->> 'channel' IS NOT NULL;
DROP INDEX tasks_offered_to;
CREATE INDEX tasks_offered_to ON tasks (offered_to, channel) WHERE offered_to IS NOT NULL;
DROP INDEX tasks_assigned;
CREATE INDEX tasks_assigned ON tasks (assigned_to_user, channel) WHERE status = 'Assigned';
