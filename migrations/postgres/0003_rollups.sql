-- PostgreSQL form of migrations/0003_rollups.sql: the same tables, columns and index names.
-- Rollups of the per-interval aggregates, across instances, at 1 minute and 1 hour.
-- Histograms are merged bucket by bucket (never averaged), so percentiles stay exact to the bucket.
CREATE TABLE rollups (
    breaker_id BIGINT NOT NULL REFERENCES breakers (id),
    resolution_ms BIGINT NOT NULL,
    start_ms BIGINT NOT NULL,
    success BIGINT NOT NULL,
    failure BIGINT NOT NULL,
    timeout BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    slow BIGINT NOT NULL,
    ignored BIGINT NOT NULL,
    latency TEXT COLLATE "C" NOT NULL,
    failure_rate_threshold DOUBLE PRECISION,
    PRIMARY KEY (breaker_id, resolution_ms, start_ms)
);

-- How far the rollup job has read the aggregates table, by id. Rolling up by id rather
-- than by time counts late-arriving aggregates too (a reporter that was cut off for a while).
-- A single row, so its id is a plain key (no identity).
CREATE TABLE rollup_progress (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    last_aggregate_id BIGINT NOT NULL
);
INSERT INTO rollup_progress (id, last_aggregate_id) VALUES (1, 0);
