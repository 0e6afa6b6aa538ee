-- Every batch of the writer that locks a customer writes version + 1: a replica's cached
-- account is current only while the row still has the version it was cached at.
ALTER TABLE customers ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
