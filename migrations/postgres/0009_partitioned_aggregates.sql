-- PostgreSQL form of migrations/0009_partitioned_aggregates.sql: the aggregates table
-- partitioned by day of start_ms, with the same columns and index names.
-- Retention then drops a day's partition whole (query/store/partitions.rs) instead of deleting
-- its rows one by one, which left dead tuples and index entries for vacuum to reclaim and
-- wrote every deleted row to the write-ahead log. The server makes each day's partition
-- ahead of time; rows no partition covers (history copied in by migrate-data, or older than
-- the partitions made) land in aggregates_default, from which the server moves a day into its
-- own partition when it makes one, and which retention empties by deleting rows.
--
-- PostgreSQL 15 allows no identity column on a partitioned table: the id comes from a
-- sequence of its own, which continues where the identity stopped (ids only grow; the rollup
-- job reads by id). The primary key must hold the partition key, so it is (id, start_ms).

ALTER TABLE aggregates RENAME TO aggregates_unpartitioned;
ALTER TABLE aggregates_unpartitioned RENAME CONSTRAINT aggregates_pkey TO aggregates_unpartitioned_pkey;
ALTER INDEX aggregates_by_breaker RENAME TO aggregates_unpartitioned_by_breaker;
ALTER SEQUENCE aggregates_id_seq RENAME TO aggregates_unpartitioned_id_seq;

CREATE SEQUENCE aggregates_id_seq AS BIGINT;
CREATE TABLE aggregates (
    id BIGINT NOT NULL DEFAULT nextval('aggregates_id_seq'),
    breaker_id BIGINT NOT NULL REFERENCES breakers (id),
    instance TEXT COLLATE "C" NOT NULL,
    start_ms BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    success BIGINT NOT NULL,
    failure BIGINT NOT NULL,
    timeout BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    slow BIGINT NOT NULL,
    ignored BIGINT NOT NULL,
    latency TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    failure_rate DOUBLE PRECISION,
    failure_rate_threshold DOUBLE PRECISION,
    config_version BIGINT NOT NULL,
    PRIMARY KEY (id, start_ms)
) PARTITION BY RANGE (start_ms);
ALTER SEQUENCE aggregates_id_seq OWNED BY aggregates.id;
CREATE INDEX aggregates_by_breaker ON aggregates (breaker_id, start_ms);

-- The partitions of the days the table holds rows of (at most 60 days back), and of today and
-- the next two, made before the rows are copied so that each row lands in its day's partition;
-- older rows land in the default partition, which retention empties row by row. Named as the
-- server names them: aggregates_YYYYMMDD, the UTC day.
DO $$
DECLARE
    day_ms CONSTANT BIGINT := 86400000;
    today INTEGER := floor(extract(epoch FROM now()) / 86400)::integer;
    d INTEGER;
BEGIN
    FOR d IN
        SELECT DISTINCT floor(start_ms / 86400000.0)::integer FROM aggregates_unpartitioned
        WHERE start_ms >= (today - 60) * day_ms
        UNION SELECT generate_series(today, today + 2)
        ORDER BY 1
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF aggregates FOR VALUES FROM (%s) TO (%s)',
            'aggregates_' || to_char(to_timestamp(d::bigint * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD'),
            d * day_ms, (d + 1) * day_ms);
    END LOOP;
END $$;
CREATE TABLE aggregates_default PARTITION OF aggregates DEFAULT;

INSERT INTO aggregates SELECT * FROM aggregates_unpartitioned;
SELECT setval('aggregates_id_seq', last_value, is_called) FROM aggregates_unpartitioned_id_seq;
DROP TABLE aggregates_unpartitioned;
