-- The scheduler keeps task counts itself and counts in full only at load and every ten
-- minutes, so this index no longer pays for the random write it costs every task insert,
-- claim and finish.
DROP INDEX IF EXISTS tasks_status;
