-- The operator's dashboard: admin accounts, their server-side sessions, and failed logins
-- (kept in the database so the login rate limit holds across replicas).

CREATE TABLE admin_users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    -- Argon2id PHC string; the password itself is never stored.
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE admin_sessions (
    -- SHA-256 of the session token: the token lives only in the admin's cookie.
    token_hash TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES admin_users (id),
    -- Synchronizer token every form POST of this session must carry.
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);

CREATE TABLE admin_login_failures (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- `email:…` or `ip:…`
    subject TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX admin_login_failures_subject ON admin_login_failures (subject, at);
