-- The adaptive engine's suggestions, with their evidence, and what admins decided.
CREATE TABLE recommendations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    breaker_id INTEGER NOT NULL REFERENCES breakers (id),
    made_ms INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'accepted', 'rejected', 'superseded')),
    detail TEXT NOT NULL,          -- protocol::Recommendation as JSON
    decided_by TEXT,
    decided_ms INTEGER,
    applied_version INTEGER
);
CREATE INDEX recommendations_by_breaker ON recommendations (breaker_id, status);
