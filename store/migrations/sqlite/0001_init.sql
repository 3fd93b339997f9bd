-- Spindle schema, SQLite. Times are Unix milliseconds.
CREATE TABLE projects (
    name          TEXT PRIMARY KEY NOT NULL,
    definition    TEXT NOT NULL,
    status        TEXT NOT NULL,
    rate          REAL NOT NULL,
    burst         REAL NOT NULL,
    grp           TEXT,
    updated_ms    INTEGER NOT NULL,
    last_start_ms INTEGER NOT NULL DEFAULT 0
);

-- status: 1 active, 2 success, 3 failed, 4 bad.
-- claimed: 1 while the task is in the scheduler's window or in flight.
-- seq orders tasks of one priority first-in first-out.
CREATE TABLE tasks (
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
    PRIMARY KEY (project, taskid)
) WITHOUT ROWID;

CREATE INDEX tasks_queue ON tasks (project, priority DESC, seq) WHERE status = 1 AND claimed = 0;
CREATE INDEX tasks_claimed ON tasks (project) WHERE claimed = 1;
CREATE INDEX tasks_status ON tasks (project, status, claimed);

CREATE TABLE results (
    project    TEXT NOT NULL,
    taskid     TEXT NOT NULL,
    url        TEXT NOT NULL,
    data       TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (project, taskid)
) WITHOUT ROWID;
