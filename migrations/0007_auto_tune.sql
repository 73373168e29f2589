-- Auto mode: per-breaker settings, and every automatic change with its canary.

-- protocol::AutoTuneSettings as JSON; a breaker without a row is not in auto mode.
CREATE TABLE auto_tune (
    breaker_id INTEGER PRIMARY KEY REFERENCES breakers (id),
    settings TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    last_run_ms INTEGER            -- the engine's last run for auto mode
);

-- One automatic change. While `status` is 'canary', `config` is served as version `version`
-- to `canary_instance` only; promotion stores it in breaker_configs for every instance, a
-- rollback stores the base config again as a newer version.
CREATE TABLE auto_tune_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    recommendation_id INTEGER NOT NULL REFERENCES recommendations (id),
    status TEXT NOT NULL CHECK (status IN ('canary', 'promoted', 'rolled_back', 'cancelled')),
    canary_instance TEXT,
    peers TEXT NOT NULL,           -- JSON array of instance names
    version INTEGER NOT NULL,
    base_version INTEGER NOT NULL,
    config TEXT NOT NULL,          -- protocol::BreakerConfig as JSON
    clamped TEXT NOT NULL,         -- JSON array of what the guardrails changed
    started_ms INTEGER NOT NULL,
    canary_ends_ms INTEGER NOT NULL,
    canary_openings INTEGER NOT NULL DEFAULT 0,
    false_trips INTEGER NOT NULL DEFAULT 0,
    ended_ms INTEGER,
    outcome TEXT
);
-- At most one canary per breaker.
CREATE UNIQUE INDEX auto_tune_one_canary ON auto_tune_changes (breaker_id) WHERE status = 'canary';
CREATE INDEX auto_tune_changes_by_breaker ON auto_tune_changes (breaker_id, id);

-- Enabled from the start: a notice of every automatic change.
INSERT INTO alert_rules (name, spec, source, updated_ms) VALUES (
    'auto-tune-changes',
    '{"name":"auto-tune-changes","kind":"auto_tune","service":"*","breaker":"*","severity":"info","enabled":true}',
    'default', 0);
