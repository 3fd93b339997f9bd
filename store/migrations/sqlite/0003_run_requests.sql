-- "Run now": when a run of the project's start URLs was last asked for (Unix ms), 0 if never.
-- The scheduler submits the start URLs again, forced, while it is later than last_start_ms.
ALTER TABLE projects ADD COLUMN run_requested_ms INTEGER NOT NULL DEFAULT 0;
