-- The tasks an agent holds now (pull, push and the agent's views count them on every
-- command): Assigned tasks by user, without the user's finished history, which the
-- index tasks_user also holds and which grows all day.
CREATE INDEX tasks_assigned ON tasks (assigned_to_user) WHERE status = 'Assigned';
