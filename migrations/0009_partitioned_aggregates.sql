-- Nothing changes on SQLite: migrations/postgres/0009_partitioned_aggregates.sql partitions
-- PostgreSQL's aggregates table by day, so that retention drops a day whole there. SQLite's
-- retention deletes rows, a bounded number per statement (query/store/rollup.rs).
SELECT 1;
