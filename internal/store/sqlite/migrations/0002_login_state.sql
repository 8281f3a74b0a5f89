-- Brute-force protection state per account (see internal/identity/bruteforce).
-- A missing row means no failures recorded. Times are RFC 3339 text in UTC,
-- NULL when unset.
CREATE TABLE login_state (
    account_id   TEXT    NOT NULL PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    failures     INTEGER NOT NULL CHECK (failures >= 0),
    lockouts     INTEGER NOT NULL CHECK (lockouts >= 0),
    locked_until TEXT,
    permanent    INTEGER NOT NULL CHECK (permanent IN (0, 1)),
    last_failure TEXT
) STRICT;
