package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/rampart-ml/rampart/internal/store"
)

// TOTP parameters (RFC 6238 defaults every authenticator app supports):
// SHA-1, 6 digits, 30-second steps, one step of clock skew either way.
const (
	totpPeriod = 30
	totpSkew   = 1
	totpIssuer = "Rampart"
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPSecretAD is the associated data a user's TOTP secret is sealed with.
func TOTPSecretAD(accountID string) []byte { return []byte("totp:" + accountID) }

// NewTOTPKey generates a TOTP secret for an account and returns it with the
// otpauth:// URL an authenticator app imports.
func NewTOTPKey(accountName string) (secret, url string, err error) {
	k, err := totp.Generate(totp.GenerateOpts{
		Issuer: totpIssuer, AccountName: accountName, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, SecretSize: 20,
	})
	if err != nil {
		return "", "", fmt.Errorf("generate totp secret: %w", err)
	}
	return k.Secret(), k.URL(), nil
}

// MatchTOTP returns the time step code is valid for at now (within one
// step of skew), or 0 if it is not valid. Callers refuse steps at or before
// the last accepted one, so a code works once.
func MatchTOTP(secret, code string, now time.Time) int64 {
	if len(code) != 6 {
		return 0
	}
	step := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := step + d
		ok, err := totp.ValidateCustom(code, secret, time.Unix(s*totpPeriod, 0).UTC(), totpOpts)
		if err == nil && ok {
			return s
		}
	}
	return 0
}

// checkOTP opens the account's sealed secret and matches code. A wrong code
// is (0, nil); only technical failures are errors.
func (l *PasswordLogin) checkOTP(a store.Account, code string, now time.Time) (int64, error) {
	if l.sealer == nil {
		return 0, errors.New("login: account has a second factor but no sealer is configured")
	}
	secret, err := l.sealer.Open(a.TOTPSecret, TOTPSecretAD(a.ID))
	if err != nil {
		return 0, fmt.Errorf("login: open totp secret of account %s: %w", a.ID, err)
	}
	return MatchTOTP(string(secret), code, now), nil
}
