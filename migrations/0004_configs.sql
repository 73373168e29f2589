-- Versioned breaker configs, what each instance runs, and an audit log of every change.

-- Every version of every breaker's config, as pushed to its instances. The newest is current.
CREATE TABLE breaker_configs (
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    version INTEGER NOT NULL,
    config TEXT NOT NULL,          -- protocol::BreakerConfig as JSON
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (breaker_id, version)
) WITHOUT ROWID;

-- What each instance last said it runs, and why it refused a pushed config.
CREATE TABLE config_status (
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    instance TEXT NOT NULL,
    running_version INTEGER NOT NULL,
    refused_version INTEGER,
    refused_field TEXT,
    refused_rule TEXT,
    reported_ms INTEGER NOT NULL,
    PRIMARY KEY (breaker_id, instance)
) WITHOUT ROWID;

-- Who changed what, when.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    service TEXT,
    breaker TEXT,
    detail TEXT NOT NULL
);
