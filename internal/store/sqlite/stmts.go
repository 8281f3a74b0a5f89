package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// stmtCache keeps prepared statements for the queries on hot paths (the
// audit append runs with every change): compiling SQL, with the triggers
// it fires, costs more than running it. database/sql keeps one compiled
// copy per connection of each statement prepared here.
//
// The statements are prepared when the store opens, never later: a
// statement prepared on the pool during a transaction would need a second
// connection, and with every connection waiting for the write lock that
// transaction holds, it would wait for ever (until busy_timeout).
type stmtCache struct {
	stmts map[string]*sql.Stmt // read-only after newStmtCache
}

func newStmtCache(ctx context.Context, db *sql.DB, queries ...string) (*stmtCache, error) {
	c := &stmtCache{stmts: make(map[string]*sql.Stmt, len(queries))}
	for _, q := range queries {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", classify(err))
		}
		c.stmts[q] = s
	}
	return c, nil
}

// in returns query prepared for use in tx (on tx's own connection); it is
// closed with tx. A query that was not prepared at open is prepared in tx.
func (c *stmtCache) in(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		return tx.StmtContext(ctx, s), nil
	}
	s, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", classify(err))
	}
	return s, nil
}
