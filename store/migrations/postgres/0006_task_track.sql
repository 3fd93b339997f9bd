-- What the last attempt of a task did (its "track"), for the web UI's task page: written with
-- every attempt's ending, NULL until the first. A JSON array,
-- [status_code, fetch_ms, process_ms, follows, items, error_kind], as in SQLite (where every
-- byte of a task row counts).
ALTER TABLE tasks ADD COLUMN track JSON;

-- The project file a project was loaded from (`--projects DIR`), so the web UI can tell a
-- project it may save back to its file from one that lives in the store; NULL for a project
-- created in the web UI or by `spindle crawl`.
ALTER TABLE projects ADD COLUMN origin TEXT;

-- The web UI lists tasks most recently changed first, a page at a time, each page read
-- backwards from its cursor in this index. Equal keys are kept in heap order, so new and
-- updated rows (updated_ms is the time of the write) land at the end of their project's
-- range. Tasks changed in the same millisecond are put in taskid order by an incremental
-- sort of that millisecond's rows only: with taskid in the index, a batch of new tasks would
-- be inserted at random places among its millisecond's entries.
CREATE INDEX tasks_changed ON tasks (project, updated_ms);
