-- Results move to a rowid table appended in write order, found through a unique index on
-- (project, taskid). Keyed by (project, taskid) themselves, every new item was an insert of
-- its whole row (about 1 KB) at a random place in the table's B-tree: a commit of 100 items
-- dirtied about 100 pages, each written to the WAL and again at the checkpoint. The index
-- entries are small, so the same commit now dirties a few index pages and appends the rows:
-- the bench crawl writes half as many bytes to disk and runs about 10% faster.
CREATE TABLE results_by_row (
    id         INTEGER PRIMARY KEY,
    project    TEXT NOT NULL,
    taskid     TEXT NOT NULL,
    url        TEXT NOT NULL,
    data       TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);

INSERT INTO results_by_row (project, taskid, url, data, updated_ms)
SELECT project, taskid, url, data, updated_ms FROM results ORDER BY updated_ms;

DROP TABLE results;
ALTER TABLE results_by_row RENAME TO results;

CREATE UNIQUE INDEX results_key ON results (project, taskid);
CREATE INDEX results_age ON results (project, updated_ms);
