-- Refunds, disputes and reconciliation: what each payment's credits have become.

-- Stripe's state the payment was last converged to, and what creditd did about it.
ALTER TABLE payments ADD COLUMN amount_refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN dispute_id TEXT;
ALTER TABLE payments ADD COLUMN dispute_status TEXT;
ALTER TABLE payments ADD COLUMN credits_clawed_back BIGINT NOT NULL DEFAULT 0;
-- The frozen amount creditd last aimed for (what could be frozen may have been less).
ALTER TABLE payments ADD COLUMN frozen_target BIGINT NOT NULL DEFAULT 0;

-- Credits frozen for a disputed payment, by grant, so an unfreeze returns them where they were.
CREATE TABLE freezes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    grant_id TEXT NOT NULL REFERENCES grants (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    created_at BIGINT NOT NULL
);
CREATE INDEX freezes_payment ON freezes (payment_id);
CREATE INDEX freezes_customer ON freezes (customer_id);

-- Every reconciliation: when, over what window, and what it changed.
CREATE TABLE reconcile_runs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    since BIGINT NOT NULL,
    events_seen BIGINT NOT NULL DEFAULT 0,
    events_recovered BIGINT NOT NULL DEFAULT 0,
    events_failed BIGINT NOT NULL DEFAULT 0,
    payments_checked BIGINT NOT NULL DEFAULT 0,
    payments_changed BIGINT NOT NULL DEFAULT 0,
    error TEXT
);
