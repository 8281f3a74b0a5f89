-- Token signing keys. The private key is sealed (internal/secrets) with the
-- key id as associated data; it is never stored in clear. A key signs until
-- sign_until and stays in the published JWKS until publish_until, so tokens
-- it signed can still be verified.
CREATE TABLE signing_keys (
    id             TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
    algorithm      TEXT NOT NULL CHECK (algorithm <> ''),
    sealed_private BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    sign_until     TEXT NOT NULL,
    publish_until  TEXT NOT NULL
) STRICT;
