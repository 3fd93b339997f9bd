-- What the last attempt of a task did (its "track": status code, fetch and process times,
-- follows, items, error kind) as JSON, for the web UI's task page; written with every
-- attempt's ending, NULL until the first.
ALTER TABLE tasks ADD COLUMN track TEXT;

-- The project file a project was loaded from (`--projects DIR`), so the web UI can tell a
-- project it may save back to its file from one that lives in the store; NULL for a project
-- created in the web UI or by `spindle crawl`.
ALTER TABLE projects ADD COLUMN origin TEXT;

-- The web UI lists tasks most recently changed first, a page at a time, each page read
-- backwards from its cursor in this index. It replaces tasks_project (project), which every
-- query that used it can use as well (a prefix), so a new task still costs one entry here:
-- appended at the end of its project's range, since updated_ms is the time of the write (as
-- with row ids before). What it adds is moving a task's entry when its updated_ms changes
-- (an attempt ends, a re-queue, a cancel), and tasks end roughly in the order they were
-- queued, so those moves touch few pages. Tasks changed in the same millisecond are ordered
-- by taskid in a sort of that millisecond's rows only: with taskid in the index, a batch of
-- new tasks would be inserted at random places among its millisecond's entries.
DROP INDEX IF EXISTS tasks_project;
CREATE INDEX tasks_changed ON tasks (project, updated_ms);
