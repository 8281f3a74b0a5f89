package authn

import "testing"

func TestVerifiedCacheIsBounded(t *testing.T) {
	t.Parallel()
	var c verifiedCache
	for i := range maxVerified + 10 {
		var sum [32]byte
		sum[0], sum[1], sum[2] = byte(i), byte(i>>8), byte(i>>16)
		c.put(sum, verifiedToken{kid: "k"})
		if len(c.m) > maxVerified {
			t.Fatalf("after %d puts the cache holds %d entries, more than %d", i+1, len(c.m), maxVerified)
		}
	}
	var last [32]byte
	n := maxVerified + 9
	last[0], last[1], last[2] = byte(n), byte(n>>8), byte(n>>16)
	if _, ok := c.get(last); !ok {
		t.Error("the latest entry is not remembered")
	}
}
