-- When each instance first reported each breaker (ms since the epoch), so the state timeline
-- shows "no data" before it instead of a state nobody reported.
-- Rows written before this column existed get the earliest time the store still knows of the
-- instance: its current state's start, its first transition, its first raw aggregate.
ALTER TABLE instance_states ADD COLUMN first_report_ms INTEGER;
UPDATE instance_states SET first_report_ms = MIN(
    since_ms,
    COALESCE((SELECT MIN(t.at_ms) FROM transitions t
              WHERE t.breaker_id = instance_states.breaker_id
                AND t.instance = instance_states.instance), since_ms),
    COALESCE((SELECT MIN(a.start_ms) FROM aggregates a
              WHERE a.breaker_id = instance_states.breaker_id
                AND a.instance = instance_states.instance), since_ms)
);
