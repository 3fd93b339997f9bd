-- `result_ttl` purges a project's results older than a time once a minute: without this index
-- every purge reads the whole results table. Updates append (updated_ms only grows).
CREATE INDEX IF NOT EXISTS results_age ON results (project, updated_ms);
