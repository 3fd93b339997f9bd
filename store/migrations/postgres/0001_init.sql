-- Spindle schema, PostgreSQL: the same tables, keys and indexes as the SQLite schema.
-- Times are Unix milliseconds (BIGINT), as in SQLite, so both backends share one data model.
--
-- Keys are TEXT COLLATE "C": comparison and ORDER BY are then byte order, like SQLite's
-- BINARY collation, so project listing and result paging (`taskid > $after ORDER BY taskid`)
-- give the same order on both backends whatever the database's locale (and are faster).
--
-- Stored JSON is of type JSON, not JSONB: JSON keeps the text as written, so an item's
-- fields come back in the order the project defines them (the CSV/JSONL export depends on
-- it) and strings may hold "\u0000", which JSONB rejects; it is still validated on insert.

CREATE TABLE projects (
    name          TEXT COLLATE "C" PRIMARY KEY,
    definition    TEXT NOT NULL,
    status        TEXT NOT NULL,
    rate          DOUBLE PRECISION NOT NULL,
    burst         DOUBLE PRECISION NOT NULL,
    grp           TEXT,
    updated_ms    BIGINT NOT NULL,
    last_start_ms BIGINT NOT NULL DEFAULT 0
);

-- Orders tasks of one priority first-in first-out across every project and every process
-- that writes the store; unlike a counter kept in memory it survives restarts.
CREATE SEQUENCE tasks_seq AS BIGINT;

-- status: 1 active, 2 success, 3 failed, 4 bad.
-- claimed: true while the task is in the scheduler's window or in flight.
-- seq: taken from tasks_seq on every (re-)queue, so a re-queued task goes to the back.
CREATE TABLE tasks (
    project       TEXT COLLATE "C" NOT NULL,
    taskid        TEXT COLLATE "C" NOT NULL,
    url           TEXT NOT NULL,
    status        SMALLINT NOT NULL,
    claimed       BOOLEAN NOT NULL DEFAULT FALSE,
    priority      INTEGER NOT NULL,
    exetime       BIGINT NOT NULL,
    seq           BIGINT NOT NULL DEFAULT nextval('tasks_seq'),
    retries       BIGINT NOT NULL,
    age_ms        BIGINT,
    itag          TEXT,
    task          JSON NOT NULL,
    last_crawl_ms BIGINT,
    last_error    TEXT,
    updated_ms    BIGINT NOT NULL,
    PRIMARY KEY (project, taskid)
);

ALTER SEQUENCE tasks_seq OWNED BY tasks.seq;

CREATE INDEX tasks_queue ON tasks (project, priority DESC, seq) WHERE status = 1 AND NOT claimed;
CREATE INDEX tasks_claimed ON tasks (project) WHERE claimed;
CREATE INDEX tasks_status ON tasks (project, status, claimed);

CREATE TABLE results (
    project    TEXT COLLATE "C" NOT NULL,
    taskid     TEXT COLLATE "C" NOT NULL,
    url        TEXT NOT NULL,
    data       JSON NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (project, taskid)
);
