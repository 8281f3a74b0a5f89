// Package sqlite is Rampart's default store backend: a single SQLite file
// accessed through the pure-Go modernc.org/sqlite driver.
//
// It owns the database file, its connection settings (WAL, foreign keys,
// busy timeout, IMMEDIATE write transactions) and the embedded schema
// migrations in migrations/. It implements store.Store and nothing more.
//
// It must never make policy decisions (who may do what), log record contents
// (password hashes, names), or let a caller change state outside InTx. It
// must never apply part of a migration set, and it must refuse to touch a
// database written by a newer schema rather than guess at it.
package sqlite
