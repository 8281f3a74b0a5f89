package authn

import (
	"crypto/ecdsa"
	"sync"
)

// maxVerified bounds the verified-signature cache. Past it the cache is
// emptied and refilled: a flood of distinct valid tokens costs what it
// costs without the cache, and memory stays bounded.
const maxVerified = 16384

// verifiedToken is a token whose ES256 signature was checked.
type verifiedToken struct {
	claims claims
	kid    string
	pub    *ecdsa.PublicKey
}

// verifiedCache remembers, by the SHA-256 of the raw token, tokens whose
// signature verified. An ECDSA verification costs ~70 µs, more than the
// rest of an inference request; a client sends the same token on every
// call until it expires. Only the signature is remembered: expiry,
// revocation and the account's state are checked on every use, and an
// entry is used only while its key is still one of the ring's.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[[32]byte]verifiedToken
}

func (c *verifiedCache) get(sum [32]byte) (verifiedToken, bool) {
	c.mu.RLock()
	v, ok := c.m[sum]
	c.mu.RUnlock()
	return v, ok
}

func (c *verifiedCache) put(sum [32]byte, v verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxVerified {
		c.m = make(map[[32]byte]verifiedToken)
	}
	c.m[sum] = v
}
