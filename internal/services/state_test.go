package services

import (
	"errors"
	"testing"
)

// TestNextExhaustive checks every (state, event) pair, including unknown
// ones, against the table in the design: created → starting → ready →
// stopping → stopped, fail from anywhere, failed/stopped → starting.
func TestNextExhaustive(t *testing.T) {
	t.Parallel()
	allowed := map[State]map[Event]State{
		Created:  {Start: Starting, Fail: Failed},
		Starting: {Up: Ready, Stop: Stopping, Fail: Failed},
		Ready:    {Stop: Stopping, Fail: Failed, Resume: Starting},
		Stopping: {Down: Stopped, Fail: Failed},
		Stopped:  {Start: Starting, Fail: Failed},
		Failed:   {Start: Starting, Stop: Stopped, Fail: Failed},
	}
	states := append(States(), "", "running", "READY")
	events := append(Events(), "", "restart", "START")
	for _, s := range states {
		for _, e := range events {
			got, err := Next(s, e)
			want, ok := allowed[s][e]
			switch {
			case ok && (err != nil || got != want):
				t.Errorf("Next(%q, %q) = %q, %v; want %q", s, e, got, err, want)
			case !ok && !errors.Is(err, ErrTransition):
				t.Errorf("Next(%q, %q) = %q, %v; want ErrTransition", s, e, got, err)
			case !ok && got != s:
				t.Errorf("Next(%q, %q) refused but returned %q, want the unchanged state", s, e, got)
			}
		}
	}
}

// Every state can be reached from created and every state can reach
// stopped or starting again: no dead ends.
func TestNextReachability(t *testing.T) {
	t.Parallel()
	reach := map[State]bool{Created: true}
	for changed := true; changed; {
		changed = false
		for s := range reach {
			for _, e := range Events() {
				if to, err := Next(s, e); err == nil && !reach[to] {
					reach[to], changed = true, true
				}
			}
		}
	}
	for _, s := range States() {
		if !reach[s] {
			t.Errorf("state %q cannot be reached from created", s)
		}
		if _, err := Next(s, Fail); err != nil {
			t.Errorf("state %q cannot fail: %v", s, err)
		}
	}
}

func TestStateValidAndDeletable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s                State
		valid, deletable bool
	}{
		{Created, true, true}, {Starting, true, false}, {Ready, true, false},
		{Stopping, true, false}, {Stopped, true, true}, {Failed, true, true}, {"running", false, false},
	} {
		if tc.s.Valid() != tc.valid || tc.s.Deletable() != tc.deletable {
			t.Errorf("%q: Valid %v Deletable %v, want %v %v", tc.s, tc.s.Valid(), tc.s.Deletable(), tc.valid, tc.deletable)
		}
	}
}
