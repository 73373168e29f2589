-- Rollups of the per-interval aggregates, across instances, at 1 minute and 1 hour.
-- Histograms are merged bucket by bucket (never averaged), so percentiles stay exact to the bucket.
CREATE TABLE rollups (
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    resolution_ms INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    success INTEGER NOT NULL,
    failure INTEGER NOT NULL,
    timeout INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    slow INTEGER NOT NULL,
    ignored INTEGER NOT NULL,
    latency TEXT NOT NULL,
    failure_rate_threshold REAL,
    PRIMARY KEY (breaker_id, resolution_ms, start_ms)
) WITHOUT ROWID;

-- How far the rollup job has read the aggregates table, by id. Rolling up by id rather
-- than by time counts late-arriving aggregates too (a reporter that was cut off for a while).
CREATE TABLE rollup_progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_aggregate_id INTEGER NOT NULL
);
INSERT INTO rollup_progress (id, last_aggregate_id) VALUES (1, 0);
