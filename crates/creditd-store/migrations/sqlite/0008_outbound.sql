-- Outbound events to the app: webhook endpoints, the transactional outbox, deliveries and
-- their attempts; low-balance alerts and auto top-up. Times are unix seconds, except the
-- delivery schedule (`*_ms`: unix milliseconds, retries start seconds apart).

CREATE TABLE webhook_endpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    description TEXT,
    -- JSON array of event types, or ["*"].
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    -- After a rotation the old secret signs beside the new one until it expires.
    previous_secret TEXT,
    previous_secret_expires_at BIGINT,
    enabled BIGINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The outbox: written in the transaction of the change each event describes.
CREATE TABLE outbound_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    customer_id TEXT,
    -- The exact body every endpoint receives: {"type", "timestamp", "data"}.
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- 1 once a delivery row exists for every endpoint that wanted it.
    dispatched BIGINT NOT NULL DEFAULT 0 CHECK (dispatched IN (0, 1))
);
CREATE INDEX outbound_events_undispatched ON outbound_events (seq) WHERE dispatched = 0;
CREATE INDEX outbound_events_customer ON outbound_events (customer_id, seq);

-- One event to one endpoint; its id is the `webhook-id` of every attempt.
CREATE TABLE outbound_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL REFERENCES outbound_events (id),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_ms BIGINT NOT NULL,
    -- A replica sending it holds it until then; another takes over after.
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    first_attempt_ms BIGINT,
    last_status_code BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX outbound_deliveries_due ON outbound_deliveries (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX outbound_deliveries_endpoint ON outbound_deliveries (endpoint_id, seq);

CREATE TABLE delivery_attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    delivery_id TEXT NOT NULL REFERENCES outbound_deliveries (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    attempted_ms BIGINT NOT NULL,
    status_code BIGINT,
    latency_ms BIGINT NOT NULL CHECK (latency_ms >= 0),
    -- The first KiB of the response body, or why there was none.
    response TEXT,
    error TEXT
);
CREATE INDEX delivery_attempts_endpoint ON delivery_attempts (endpoint_id, seq);

-- Low-balance alerts: the customer's own threshold (NULL: the configured default) and where
-- the last change left it ('ok', 'low', 'depleted'); an alert fires on leaving a state.
ALTER TABLE customers ADD COLUMN low_balance_threshold BIGINT CHECK (low_balance_threshold >= 0);
ALTER TABLE customers ADD COLUMN balance_alert TEXT NOT NULL DEFAULT 'ok'
    CHECK (balance_alert IN ('ok', 'low', 'depleted'));

CREATE TABLE auto_topups (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    enabled BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    threshold BIGINT NOT NULL CHECK (threshold >= 0),
    package_id TEXT NOT NULL REFERENCES packages (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    max_per_month BIGINT CHECK (max_per_month > 0),
    -- 1 while available credits are at or above the threshold: the next crossing may top up.
    armed BIGINT NOT NULL DEFAULT 1 CHECK (armed IN (0, 1)),
    consecutive_failures BIGINT NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    disabled_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One top-up decided by one crossing; its id keys the off-session PaymentIntent.
CREATE TABLE auto_topup_runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    package_id TEXT NOT NULL REFERENCES packages (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'succeeded', 'failed')),
    payment_id TEXT REFERENCES payments (id),
    failure_code TEXT,
    failure_message TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- At most one top-up in flight per customer.
CREATE UNIQUE INDEX auto_topup_runs_in_flight ON auto_topup_runs (customer_id)
    WHERE status IN ('pending', 'processing');
CREATE INDEX auto_topup_runs_customer ON auto_topup_runs (customer_id, created_at);
