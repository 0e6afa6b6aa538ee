-- Stripe events are acknowledged once recorded and handled in the background by any replica:
-- `next_attempt_at` (unix ms) says when an event is due (NULL: nothing left to do),
-- `locked_until` (unix ms) that a replica is handling it until then. `refused`: an event of
-- the other mode (live vs test) than the configured key, recorded and never handled.
-- SQLite cannot change a CHECK constraint: the table is rebuilt (nothing references it).
CREATE TABLE stripe_events_v7 (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created BIGINT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('processing', 'processed', 'ignored', 'failed', 'refused')),
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    received_at BIGINT NOT NULL,
    processed_at BIGINT,
    next_attempt_at BIGINT,
    locked_until BIGINT
);
INSERT INTO stripe_events_v7 (id, type, created, payload, status, error, attempts, received_at, processed_at, next_attempt_at)
SELECT id, type, created, payload, status, error, attempts, received_at, processed_at,
       CASE WHEN status IN ('processing', 'failed') THEN 0 END
FROM stripe_events;
DROP TABLE stripe_events;
ALTER TABLE stripe_events_v7 RENAME TO stripe_events;
CREATE INDEX stripe_events_status ON stripe_events (status, received_at);
CREATE INDEX stripe_events_due ON stripe_events (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
