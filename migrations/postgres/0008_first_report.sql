-- PostgreSQL form of migrations/0008_first_report.sql: the same column.
-- When each instance first reported each breaker (ms since the epoch), so the state timeline
-- shows "no data" before it instead of a state nobody reported.
ALTER TABLE instance_states ADD COLUMN first_report_ms BIGINT;
UPDATE instance_states SET first_report_ms = LEAST(
    since_ms,
    (SELECT MIN(t.at_ms) FROM transitions t
     WHERE t.breaker_id = instance_states.breaker_id AND t.instance = instance_states.instance),
    (SELECT MIN(a.start_ms) FROM aggregates a
     WHERE a.breaker_id = instance_states.breaker_id AND a.instance = instance_states.instance)
);
