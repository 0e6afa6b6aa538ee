-- The native PostgreSQL driver reads and writes these as what they are: the 0/1 flags
-- become BOOLEAN, and metadata (always a JSON object) becomes jsonb. The checks and partial
-- indexes that compared the flags with 0 and 1 are recreated in boolean terms.
DROP INDEX outbound_events_undispatched;
DROP INDEX plans_one_free;
ALTER TABLE plans DROP CONSTRAINT plans_paid_check, DROP CONSTRAINT plans_free_shape_check;

ALTER TABLE packages
    DROP CONSTRAINT packages_active_check, ALTER COLUMN active DROP DEFAULT,
    ALTER COLUMN active TYPE BOOLEAN USING active <> 0, ALTER COLUMN active SET DEFAULT TRUE,
    DROP CONSTRAINT packages_synced_check, ALTER COLUMN synced DROP DEFAULT,
    ALTER COLUMN synced TYPE BOOLEAN USING synced <> 0, ALTER COLUMN synced SET DEFAULT FALSE;
ALTER TABLE plans
    DROP CONSTRAINT plans_active_check, ALTER COLUMN active DROP DEFAULT,
    ALTER COLUMN active TYPE BOOLEAN USING active <> 0, ALTER COLUMN active SET DEFAULT TRUE,
    DROP CONSTRAINT plans_free_check, ALTER COLUMN free DROP DEFAULT,
    ALTER COLUMN free TYPE BOOLEAN USING free <> 0, ALTER COLUMN free SET DEFAULT FALSE;
ALTER TABLE subscriptions
    DROP CONSTRAINT subscriptions_cancel_at_period_end_check, ALTER COLUMN cancel_at_period_end DROP DEFAULT,
    ALTER COLUMN cancel_at_period_end TYPE BOOLEAN USING cancel_at_period_end <> 0,
    ALTER COLUMN cancel_at_period_end SET DEFAULT FALSE;
ALTER TABLE webhook_endpoints
    DROP CONSTRAINT webhook_endpoints_enabled_check, ALTER COLUMN enabled DROP DEFAULT,
    ALTER COLUMN enabled TYPE BOOLEAN USING enabled <> 0, ALTER COLUMN enabled SET DEFAULT TRUE;
ALTER TABLE outbound_events
    DROP CONSTRAINT outbound_events_dispatched_check, ALTER COLUMN dispatched DROP DEFAULT,
    ALTER COLUMN dispatched TYPE BOOLEAN USING dispatched <> 0, ALTER COLUMN dispatched SET DEFAULT FALSE;
ALTER TABLE auto_topups
    DROP CONSTRAINT auto_topups_enabled_check,
    ALTER COLUMN enabled TYPE BOOLEAN USING enabled <> 0,
    DROP CONSTRAINT auto_topups_armed_check, ALTER COLUMN armed DROP DEFAULT,
    ALTER COLUMN armed TYPE BOOLEAN USING armed <> 0, ALTER COLUMN armed SET DEFAULT TRUE;
ALTER TABLE features
    DROP CONSTRAINT features_active_check, ALTER COLUMN active DROP DEFAULT,
    ALTER COLUMN active TYPE BOOLEAN USING active <> 0, ALTER COLUMN active SET DEFAULT TRUE;

ALTER TABLE plans ADD CONSTRAINT plans_paid_check CHECK (free OR (price > 0 AND credits > 0));
ALTER TABLE plans ADD CONSTRAINT plans_free_shape_check
    CHECK (NOT free OR (price = 0 AND stripe_price_id IS NULL AND billing_interval = 'month'));
CREATE UNIQUE INDEX plans_one_free ON plans (free) WHERE free AND active;
CREATE INDEX outbound_events_undispatched ON outbound_events (seq) WHERE NOT dispatched;

-- ledger_entries rejects every UPDATE; a type change rewrites the table without one.
ALTER TABLE customers ALTER COLUMN metadata DROP DEFAULT,
    ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb, ALTER COLUMN metadata SET DEFAULT '{}'::jsonb;
ALTER TABLE ledger_entries ALTER COLUMN metadata DROP DEFAULT,
    ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb, ALTER COLUMN metadata SET DEFAULT '{}'::jsonb;
ALTER TABLE holds ALTER COLUMN metadata DROP DEFAULT,
    ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb, ALTER COLUMN metadata SET DEFAULT '{}'::jsonb;
