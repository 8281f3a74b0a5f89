package bruteforce

import (
	"errors"
	"fmt"
)

// Config gathers the package's settings for the server configuration.
type Config struct {
	Account Policy
	Source  SourcePolicy
	Hash    HashPolicy
	Timing  Timing
}

// DefaultConfig returns every defence on, with its default settings.
func DefaultConfig() Config {
	return Config{
		Account: DefaultPolicy(),
		Source:  DefaultSourcePolicy(),
		Hash:    DefaultHashPolicy(),
		Timing:  Timing{Min: DefaultMinResponse},
	}
}

// Validate reports every problem with c at once, each prefixed with the part
// it concerns.
func (c Config) Validate() error {
	var errs []error
	if err := c.Account.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("account lockout: %w", err))
	}
	if err := c.Source.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("source limit: %w", err))
	}
	if err := c.Hash.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("hash limit: %w", err))
	}
	if c.Timing.Min < 0 {
		errs = append(errs, fmt.Errorf("timing: Min is %v, must not be negative", c.Timing.Min))
	}
	return errors.Join(errs...)
}
