-- Stripe events are acknowledged once recorded and handled in the background by any replica:
-- `next_attempt_at` (unix ms) says when an event is due (NULL: nothing left to do),
-- `locked_until` (unix ms) that a replica is handling it until then. `refused`: an event of
-- the other mode (live vs test) than the configured key, recorded and never handled.
ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_status_check;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_status_check
    CHECK (status IN ('processing', 'processed', 'ignored', 'failed', 'refused'));
ALTER TABLE stripe_events ADD COLUMN next_attempt_at BIGINT, ADD COLUMN locked_until BIGINT;
UPDATE stripe_events SET next_attempt_at = 0 WHERE status IN ('processing', 'failed');
CREATE INDEX stripe_events_due ON stripe_events (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
