-- The tasks an agent holds now (pull, push and the agent's views count them on every
-- command): Assigned tasks by user, without the user's finished history, which the
-- index tasks_user also holds and which grows all day.
CREATE INDEX tasks_assigned ON tasks (assigned_to_user) WHERE status = 'Assigned';
-- A queue's oldest waiting task (the console's queues page): PostgreSQL otherwise walks
-- tasks_queue through the queue's finished tasks, about 1.4 s with a million of them.
-- SQLite plans it on tasks_status_priority and needs no index.
CREATE INDEX tasks_queue_waiting ON tasks (queue, broker_id) WHERE status = 'Distributed';
