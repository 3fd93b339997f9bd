-- What the last attempt of a task did (its "track"), for the web UI's task page: written with
-- every attempt's ending, NULL until the first. A JSON array,
-- [status_code, fetch_ms, process_ms, follows, items, error_kind], not an object: every task
-- row grows by one at the end of its attempt, and rows that grow by the object's 90 bytes
-- outgrow their pages (SQLite's work in the bench crawl was 4% more with the object).
ALTER TABLE tasks ADD COLUMN track TEXT;

-- The project file a project was loaded from (`--projects DIR`), so the web UI can tell a
-- project it may save back to its file from one that lives in the store; NULL for a project
-- created in the web UI or by `spindle crawl`.
ALTER TABLE projects ADD COLUMN origin TEXT;

-- The web UI lists tasks most recently changed first, a page at a time, each page read
-- backwards from its cursor in this index. It replaces tasks_project (project), whose uses
-- it serves as a prefix, so a new task still costs one entry, appended at the end of its
-- project's range (updated_ms is the time of the write). What it adds is moving a task's
-- entry when its updated_ms changes (an attempt ends, a re-queue, a cancel): in the bench
-- crawl about 5,000 instructions a task, 0.5% of the crawler's. An index beside
-- tasks_project (tried as a partial one of unclaimed tasks, which spares the crawl the move)
-- cost the frontier bench 5% of its instructions: a second entry per new task. Tasks changed
-- in the same millisecond are sorted by taskid among themselves when read: with taskid in
-- the index, a batch of new tasks would be inserted at random places among its
-- millisecond's entries.
DROP INDEX IF EXISTS tasks_project;
CREATE INDEX tasks_changed ON tasks (project, updated_ms);
