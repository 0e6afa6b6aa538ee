-- The credits ledger. Amounts are micro-credits (1 credit = 1 000 000); times are unix seconds.

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    email TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    -- Σ grants.remaining, maintained with every entry; checked by `creditd verify`.
    balance BIGINT NOT NULL DEFAULT 0,
    -- Σ open holds.
    held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    -- Credits owed after clawbacks no grant could cover (balance includes it, negatively).
    debt BIGINT NOT NULL DEFAULT 0 CHECK (debt >= 0),
    -- Credits frozen by open disputes (not in balance).
    frozen BIGINT NOT NULL DEFAULT 0 CHECK (frozen >= 0),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE grants (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    remaining BIGINT NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 100),
    expires_at BIGINT,
    source TEXT NOT NULL CHECK (source IN ('signup_bonus', 'promotion', 'admin', 'purchase', 'subscription')),
    reason TEXT,
    reference TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX grants_customer ON grants (customer_id, seq);
CREATE INDEX grants_live ON grants (customer_id) WHERE remaining > 0;
-- A purchase (Checkout Session, PaymentIntent) is granted at most once.
CREATE INDEX grants_expiry ON grants (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;
CREATE UNIQUE INDEX grants_source_reference ON grants (source, reference) WHERE reference IS NOT NULL;

CREATE TABLE ledger_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    -- NULL only for debt: a clawback no grant covered, or the debt leg of its payment.
    grant_id TEXT REFERENCES grants (id),
    kind TEXT NOT NULL CHECK (kind IN ('grant', 'usage', 'expire', 'clawback', 'freeze', 'unfreeze', 'debt_payment')),
    amount BIGINT NOT NULL CHECK (amount <> 0),
    balance_after BIGINT NOT NULL,
    reference TEXT,
    feature TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    CHECK (grant_id IS NOT NULL OR kind IN ('clawback', 'debt_payment')),
    -- The sign follows the kind: credits arrive by grant, unfreeze and the debt leg of a payment.
    CHECK ((amount > 0) = (kind IN ('grant', 'unfreeze') OR (kind = 'debt_payment' AND grant_id IS NULL)))
);
CREATE INDEX ledger_customer ON ledger_entries (customer_id, seq);
CREATE INDEX ledger_grant ON ledger_entries (grant_id);

CREATE TRIGGER ledger_entries_immutable_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER ledger_entries_immutable_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;

CREATE TABLE holds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    status TEXT NOT NULL CHECK (status IN ('open', 'captured', 'released', 'expired')),
    captured BIGINT CHECK (captured >= 0),
    feature TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((status = 'captured') = (captured IS NOT NULL))
);
CREATE INDEX holds_open ON holds (customer_id) WHERE status = 'open';
CREATE INDEX holds_expiry ON holds (expires_at) WHERE status = 'open';

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    -- The first result, replayed to every retry; NULL only inside the claiming transaction.
    outcome TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- SHA-256 of the secret: the secret itself is shown once and never stored.
    hash TEXT NOT NULL UNIQUE,
    last4 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
