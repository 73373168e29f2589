-- PostgreSQL form of migrations/0010_rollup_partial.sql: the same columns.
-- A rollup run writes its buckets in several short transactions, breakers in id order; until
-- its last one moves `last_aggregate_id`, the buckets of breakers up to `partial_breaker_id`
-- already count the aggregates up to `partial_through_id`. NULL when no run is under way.
ALTER TABLE rollup_progress ADD COLUMN partial_through_id BIGINT;
ALTER TABLE rollup_progress ADD COLUMN partial_breaker_id BIGINT;
