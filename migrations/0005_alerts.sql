-- Alerting: rules and channels, the alert engine's cursor and view of the fleet, alerts with
-- their history, and the outbox of notifications still to deliver.

-- Rules, as protocol::AlertRule JSON. `source` is 'default', 'config' (settings file or
-- command line, re-read at every start) or 'api'.
CREATE TABLE alert_rules (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
-- Enabled from the start: any breaker going Closed -> Open.
INSERT INTO alert_rules (name, spec, source, updated_ms) VALUES (
    'breaker-opened',
    '{"name":"breaker-opened","kind":"trip","service":"*","breaker":"*","severity":"critical","enabled":true}',
    'default', 0);

-- Channels. The secret is kept as given (it signs payloads) and never returned by the API.
-- `rules` is a JSON array of rule names; empty for every rule.
CREATE TABLE alert_channels (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'alertmanager')),
    url TEXT NOT NULL,
    secret TEXT,
    rules TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- How far the engine has read the transitions table, by id. Starts at the newest transition
-- so that history from before alerting existed does not page anyone.
CREATE TABLE alert_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_transition_id INTEGER NOT NULL
);
INSERT INTO alert_cursor (id, last_transition_id) SELECT 1, COALESCE(MAX(id), 0) FROM transitions;

-- The engine's view of each instance's state, exactly as of the cursor.
CREATE TABLE alert_instances (
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    instance TEXT NOT NULL,
    state TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (breaker_id, instance)
) WITHOUT ROWID;

-- Breakers that are not Closed on every instance, since when.
CREATE TABLE alert_incidents (
    breaker_id INTEGER PRIMARY KEY REFERENCES breakers (id),
    started_ms INTEGER NOT NULL
);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    group_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    title TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    resolved_ms INTEGER,
    trigger_kind TEXT NOT NULL,
    trigger_value REAL NOT NULL,
    threshold REAL NOT NULL,
    acknowledged_by TEXT,
    acknowledged_ms INTEGER,
    silenced_until_ms INTEGER
);
-- One firing alert per rule and group: an incident is alerted once, not once per instance.
CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule, group_key) WHERE status = 'firing';

-- The breakers an alert names (several callers of one dependency share one alert).
CREATE TABLE alert_members (
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    PRIMARY KEY (alert_id, breaker_id)
) WITHOUT ROWID;

-- An alert's history; `snapshot` is the protocol::Alert notified for this event.
CREATE TABLE alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    detail TEXT,
    snapshot TEXT
);
CREATE INDEX alert_events_by_alert ON alert_events (alert_id);

-- Notifications to deliver, at least once, each with a key receivers can deduplicate on.
CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL REFERENCES alert_events (id),
    channel_id INTEGER NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_ms INTEGER,
    last_error TEXT
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_ms) WHERE delivered_ms IS NULL;
