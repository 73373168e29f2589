-- A rollup run writes its buckets in several short transactions, breakers in id order, so
-- ingest never waits long for the write lock. Until its last one moves `last_aggregate_id`,
-- these say how far it got: the buckets of breakers up to `partial_breaker_id` already count
-- the aggregates up to `partial_through_id`. NULL when no run is under way.
ALTER TABLE rollup_progress ADD COLUMN partial_through_id INTEGER;
ALTER TABLE rollup_progress ADD COLUMN partial_breaker_id INTEGER;
