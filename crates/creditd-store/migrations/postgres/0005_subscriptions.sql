-- Subscriptions: plans, the subscriptions creditd has seen, and the allowance each paid
-- invoice granted (at most one per invoice).

CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    credits BIGINT NOT NULL CHECK (credits > 0),
    price BIGINT NOT NULL CHECK (price > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    billing_interval TEXT NOT NULL CHECK (billing_interval IN ('day', 'week', 'month', 'year')),
    rollover_cap BIGINT NOT NULL DEFAULT 0 CHECK (rollover_cap >= 0),
    stripe_price_id TEXT UNIQUE,
    active BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at BIGINT NOT NULL
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    plan_id TEXT REFERENCES plans (id),
    status TEXT NOT NULL,
    current_period_start BIGINT,
    current_period_end BIGINT,
    cancel_at_period_end BIGINT NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id, updated_at);

CREATE TABLE allowances (
    invoice_id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    -- NULL when the invoice granted nothing (a downgrade's proration).
    grant_id TEXT UNIQUE REFERENCES grants (id),
    credits BIGINT NOT NULL CHECK (credits >= 0),
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX allowances_subscription ON allowances (subscription_id, period_end);
