-- Features with rate cards, plans that include them (on/off or a limit per period), the free
-- plan, budgets per API key of a customer, the counts limits and budgets are decided on, and
-- the units (with the prices charged) of every usage priced by units.

CREATE TABLE features (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- Prices are credits (micro-credits here) per `per` units.
    per BIGINT NOT NULL DEFAULT 1 CHECK (per BETWEEN 1 AND 1000000000),
    active BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE feature_prices (
    feature_id TEXT NOT NULL REFERENCES features (id),
    unit TEXT NOT NULL,
    price BIGINT NOT NULL CHECK (price > 0),
    PRIMARY KEY (feature_id, unit)
);

-- A free plan has no price and no Stripe Price; paid plans keep both constraints. SQLite cannot
-- change a CHECK in place: the table is rebuilt as SQLite documents it, with foreign keys off
-- (the migrator does that for the marker below and runs foreign_key_check before committing).
-- creditd: foreign-keys-off
CREATE TABLE plans_0009 (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    credits BIGINT NOT NULL CHECK (credits >= 0),
    price BIGINT NOT NULL CHECK (price >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    billing_interval TEXT NOT NULL CHECK (billing_interval IN ('day', 'week', 'month', 'year')),
    rollover_cap BIGINT NOT NULL DEFAULT 0 CHECK (rollover_cap >= 0),
    stripe_price_id TEXT UNIQUE,
    active BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at BIGINT NOT NULL,
    free BIGINT NOT NULL DEFAULT 0 CHECK (free IN (0, 1)),
    CHECK (free = 1 OR (price > 0 AND credits > 0)),
    CHECK (free = 0 OR (price = 0 AND stripe_price_id IS NULL AND billing_interval = 'month'))
);
INSERT INTO plans_0009 (id, name, credits, price, currency, billing_interval, rollover_cap, stripe_price_id, active, created_at)
SELECT id, name, credits, price, currency, billing_interval, rollover_cap, stripe_price_id, active, created_at
FROM plans;
DROP TABLE plans;
ALTER TABLE plans_0009 RENAME TO plans;
-- At most one free plan is offered at a time.
CREATE UNIQUE INDEX plans_one_free ON plans (free) WHERE free = 1 AND active = 1;

CREATE TABLE plan_features (
    plan_id TEXT NOT NULL REFERENCES plans (id),
    feature_id TEXT NOT NULL REFERENCES features (id),
    -- NULL: included without a limit.
    usage_limit BIGINT CHECK (usage_limit > 0),
    period TEXT CHECK (period IN ('day', 'month')),
    CHECK ((usage_limit IS NULL) = (period IS NULL)),
    PRIMARY KEY (plan_id, feature_id)
);

CREATE TABLE budgets (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    id TEXT NOT NULL,
    name TEXT,
    spend_limit BIGINT NOT NULL CHECK (spend_limit > 0),
    period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (customer_id, id)
);

-- Uses of a limited feature (`feature:<id>`, counted per use) and credits of a budget
-- (`budget:<id>`, micro-credits) in the period that starts at window_start (0 for `total`).
-- Written by the writer in the transaction that decides the balance.
CREATE TABLE usage_counters (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    counter TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    used BIGINT NOT NULL CHECK (used >= 0),
    PRIMARY KEY (customer_id, counter, window_start)
);

-- The units of a request priced by units, each with the price it was charged at. `reference`
-- is the usage id or the hold id; `kind` says which step of a hold it was.
CREATE TABLE usage_units (
    reference TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('usage', 'hold', 'capture')),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    feature TEXT NOT NULL,
    unit TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    price BIGINT NOT NULL CHECK (price > 0),
    per BIGINT NOT NULL CHECK (per > 0),
    -- The whole request's credits, rounded up once.
    amount BIGINT NOT NULL CHECK (amount > 0),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (reference, kind, unit)
);
CREATE INDEX usage_units_feature ON usage_units (created_at, feature);

-- The budget a hold reserves against, and the start of the window its reservation counts in.
ALTER TABLE holds ADD COLUMN budget TEXT;
ALTER TABLE holds ADD COLUMN budget_window BIGINT;

-- Packages imported from Stripe by `creditd packages sync` (archived by it when their Price goes).
ALTER TABLE packages ADD COLUMN synced BIGINT NOT NULL DEFAULT 0 CHECK (synced IN (0, 1));
