-- Human user accounts. created_at is RFC 3339 text in UTC with a fixed
-- nine-digit fraction, so it sorts as text in time order.
CREATE TABLE accounts (
    id                   TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    name                 TEXT    NOT NULL UNIQUE CHECK (name <> ''),
    password_hash        TEXT    NOT NULL CHECK (password_hash <> ''),
    admin                INTEGER NOT NULL CHECK (admin IN (0, 1)),
    must_change_password INTEGER NOT NULL CHECK (must_change_password IN (0, 1)),
    created_at           TEXT    NOT NULL
) STRICT;
