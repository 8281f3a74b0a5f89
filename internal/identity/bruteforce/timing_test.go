package bruteforce

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTimingPad(t *testing.T) {
	t.Parallel()
	const floor = 5 * time.Millisecond
	tests := []struct {
		name    string
		min     time.Duration
		elapsed time.Duration
		atLeast time.Duration
	}{
		{"pads to the floor", floor, 0, floor},
		{"pads the remainder", floor, 3 * time.Millisecond, 2 * time.Millisecond},
		{"no wait once past the floor", floor, 10 * time.Millisecond, 0},
		{"disabled", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			if err := (Timing{Min: tt.min}).Pad(context.Background(), tt.elapsed); err != nil {
				t.Fatalf("Pad() = %v", err)
			}
			took := time.Since(start)
			if took < tt.atLeast {
				t.Errorf("Pad() took %v, want at least %v", took, tt.atLeast)
			}
			if tt.atLeast == 0 && took > 50*time.Millisecond {
				t.Errorf("Pad() took %v, want no wait", took)
			}
		})
	}
}

func TestTimingPadContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := (Timing{Min: time.Hour}).Pad(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Pad() with a cancelled ctx = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Pad() took %v after cancel", took)
	}
	if err := (Timing{}).Pad(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Pad() past the floor with a cancelled ctx = %v, want context.Canceled", err)
	}
}
