-- Buying credits through Stripe: packages, Stripe customers, payments, and Stripe's events.

CREATE TABLE packages (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    credits BIGINT NOT NULL CHECK (credits > 0),
    price BIGINT NOT NULL CHECK (price > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    stripe_price_id TEXT,
    active BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at BIGINT NOT NULL
);

-- One Stripe customer per creditd customer, created once and reused.
CREATE TABLE stripe_customers (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    stripe_customer_id TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE payments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    package_id TEXT NOT NULL REFERENCES packages (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    credits BIGINT NOT NULL CHECK (credits > 0),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    flow TEXT NOT NULL CHECK (flow IN ('checkout', 'payment_intent')),
    checkout_session_id TEXT UNIQUE,
    payment_intent_id TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'expired')),
    grant_id TEXT UNIQUE REFERENCES grants (id),
    receipt_url TEXT,
    failure_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((status = 'succeeded') = (grant_id IS NOT NULL))
);
CREATE INDEX payments_customer ON payments (customer_id, seq);

-- Every Stripe event received, by id: duplicates are recognised, failures stay visible.
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created BIGINT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('processing', 'processed', 'ignored', 'failed')),
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    received_at BIGINT NOT NULL,
    processed_at BIGINT
);
CREATE INDEX stripe_events_status ON stripe_events (status, received_at);
