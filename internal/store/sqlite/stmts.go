package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache keeps prepared statements for the queries on hot paths (the
// audit append runs with every change). Compiling SQL, with the triggers
// it fires, costs more than running it; database/sql keeps one compiled
// copy per connection of each statement prepared here.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: make(map[string]*sql.Stmt)}
}

// in returns query prepared for use in tx. The statement returned is
// closed with tx.
func (c *stmtCache) in(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.stmts[query]
	if !ok {
		var err error
		if s, err = c.db.PrepareContext(ctx, query); err != nil {
			return nil, fmt.Errorf("prepare: %w", classify(err))
		}
		c.stmts[query] = s
	}
	return tx.StmtContext(ctx, s), nil
}
