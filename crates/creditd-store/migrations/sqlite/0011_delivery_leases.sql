-- Which claim a delivery is under: every claim and every redelivery moves it on. An attempt
-- whose claim is no longer the current one (its lease ran out and another replica took the
-- delivery over, or a redelivery was queued meanwhile) is logged, but decides nothing.
ALTER TABLE outbound_deliveries ADD COLUMN lease_id BIGINT NOT NULL DEFAULT 0;
