-- A count of every API key revocation (or deletion), ever. Replicas cache verified keys in
-- memory and poll this one row: when the count moves they forget every cached key, so a
-- revoked key stops working everywhere within a second. Triggers keep it true whatever
-- revokes the key (creditd, or an operator's own SQL).

CREATE TABLE api_key_revocations (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count BIGINT NOT NULL
);
INSERT INTO api_key_revocations (id, count) VALUES (1, 0);

CREATE FUNCTION count_api_key_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE api_key_revocations SET count = count + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_revoked AFTER UPDATE OF revoked_at ON api_keys
FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
EXECUTE FUNCTION count_api_key_revocation();

CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
FOR EACH ROW EXECUTE FUNCTION count_api_key_revocation();
