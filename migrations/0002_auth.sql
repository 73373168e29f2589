-- Credentials. Only SHA-256 hashes of the secrets are stored: every secret is 256 random bits,
-- so a fast hash resists guessing as well as a slow one would, and checks stay cheap per request.

-- Ingest keys, each scoped to one service.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);

-- People, with a role and a token for the dashboard and the API.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
