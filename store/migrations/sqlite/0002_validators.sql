-- Validators of the last successful fetch, sent again as a conditional request.
ALTER TABLE tasks ADD COLUMN etag TEXT;
ALTER TABLE tasks ADD COLUMN last_modified TEXT;
