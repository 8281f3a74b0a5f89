package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// TestSessionListsSplitBack checks CreateSession refuses scopes and AMR
// values that the space-separated columns could not give back unchanged.
func TestSessionListsSplitBack(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := context.Background()
	for name, sess := range map[string]store.Session{
		"scope with space": {Scopes: []string{"openid profile"}},
		"empty scope":      {Scopes: []string{"openid", ""}},
		"amr with tab":     {AMR: []string{"pwd\totp"}},
	} {
		sess.ID, sess.Subject, sess.ExpiresAt = "s", "id-alice", time.Now()
		err := s.InTx(ctx, func(tx store.Tx) error { return tx.Sessions().CreateSession(ctx, sess) })
		if err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: CreateSession error = %v, want a validation error", name, err)
		}
	}
}
