-- Tasks move to a rowid table appended in insertion order. Keyed by (project, taskid), every
-- new URL was an insert at a random place in the table's B-tree: one dirtied page, written to
-- the WAL and again at the checkpoint, per URL, which capped dedupe at about 11,000 URLs/s
-- once the table outgrew the page cache. The store now finds a task's row through its key map
-- (fingerprint of the taskid -> row id, in memory), persisted in `task_keys` below; the
-- store rebuilds the log of rows migrated here at its first start.
CREATE TABLE tasks_by_row (
    id            INTEGER PRIMARY KEY,
    project       TEXT NOT NULL,
    taskid        TEXT NOT NULL,
    url           TEXT NOT NULL,
    status        INTEGER NOT NULL,
    claimed       INTEGER NOT NULL DEFAULT 0,
    priority      INTEGER NOT NULL,
    exetime       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    retries       INTEGER NOT NULL,
    age_ms        INTEGER,
    itag          TEXT,
    task          TEXT NOT NULL,
    last_crawl_ms INTEGER,
    last_error    TEXT,
    updated_ms    INTEGER NOT NULL,
    etag          TEXT,
    last_modified TEXT
);

INSERT INTO tasks_by_row (project, taskid, url, status, claimed, priority, exetime, seq, retries,
    age_ms, itag, task, last_crawl_ms, last_error, updated_ms, etag, last_modified)
SELECT project, taskid, url, status, claimed, priority, exetime, seq, retries, age_ms, itag,
    task, last_crawl_ms, last_error, updated_ms, etag, last_modified
FROM tasks ORDER BY seq;

DROP TABLE tasks;
ALTER TABLE tasks_by_row RENAME TO tasks;

CREATE INDEX tasks_queue ON tasks (project, priority DESC, seq) WHERE status = 1 AND claimed = 0;
CREATE INDEX tasks_claimed ON tasks (project) WHERE claimed = 1;
-- Entries (project, id): a new row lands at the end of its project's range, not at random.
CREATE INDEX tasks_project ON tasks (project);

-- The key log: each write of new tasks appends one row of packed (fingerprint, row id) pairs
-- (see src/store/sqlite/keys.rs). Read once at the store's first lookup, then only the rows
-- added since. AUTOINCREMENT: an id is never reused after a delete, or a process that read
-- up to it would skip the row that took it.
CREATE TABLE task_keys (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    pairs   BLOB NOT NULL
);
CREATE INDEX task_keys_project ON task_keys (project);
