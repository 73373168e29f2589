-- The schema of fusebox's store. Times are milliseconds since the Unix epoch.

-- One row per breaker, named by its service and its own name.
CREATE TABLE breakers (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (service, name)
);

-- Every batch ever committed, so that a retried batch is recognised and stored once.
CREATE TABLE batches (
    service TEXT NOT NULL,
    instance TEXT NOT NULL,
    seq INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    n_aggregates INTEGER NOT NULL,
    n_transitions INTEGER NOT NULL,
    PRIMARY KEY (service, instance, seq)
) WITHOUT ROWID;

-- Every state transition, kept in full. The id is the live stream's event id.
CREATE TABLE transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    instance TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    trigger_kind TEXT,
    trigger_value REAL,
    trigger_threshold REAL,
    config_version INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX transitions_by_breaker ON transitions (breaker_id, at_ms);

-- The latest known state of each breaker on each instance.
CREATE TABLE instance_states (
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    instance TEXT NOT NULL,
    state TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    config_version INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (breaker_id, instance)
) WITHOUT ROWID;

-- Per-interval aggregates as reported (1 s by default).
-- latency holds the histogram's bucket counts, comma-separated (see protocol::LatencyHistogram).
-- The id only grows (AUTOINCREMENT), even after pruning empties the table: the rollup job
-- reads by id.
CREATE TABLE aggregates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    instance TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL,
    success INTEGER NOT NULL,
    failure INTEGER NOT NULL,
    timeout INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    slow INTEGER NOT NULL,
    ignored INTEGER NOT NULL,
    latency TEXT NOT NULL,
    state TEXT NOT NULL,
    failure_rate REAL,
    failure_rate_threshold REAL,
    config_version INTEGER NOT NULL
);
CREATE INDEX aggregates_by_breaker ON aggregates (breaker_id, start_ms);
