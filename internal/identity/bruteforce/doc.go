// Package bruteforce decides whether a login attempt may proceed and records
// its outcome. It owns three defences, all on by default:
//
//   - per-account lockout ([Policy], [State]): a pure state machine with
//     Keycloak's semantics and stricter defaults. The caller stores a State
//     with each account, calls [Policy.Check] before verifying the password,
//     and afterwards applies [Policy.Fail] or [Policy.Succeed] to the State
//     and stores the result in one database transaction;
//   - per-source rate limiting ([SourceLimiter]): a token bucket per client
//     address (IPv4 /32, IPv6 /64) held in bounded memory, so one address
//     cannot spray passwords across many accounts;
//   - a bound on concurrent password hashing ([HashLimiter]) with a bounded
//     wait queue, so a flood of logins cannot exhaust memory or CPU with
//     argon2id work.
//
// The package performs no password checking and no I/O: it never touches the
// database, the network or the clock except through the values it is given
// (every time-dependent function takes now). It never sees a password.
//
// # Order of checks in a login handler
//
//	start := now()
//	ok, retry := sources.Allow(clientAddr, start)
//	if !ok: answer 429 with Retry-After: retry, unpadded
//	load the account (it may not exist) and its State; d := policy.Check(state, start)
//	release, err := hashes.Acquire(ctx)
//	if err != nil: answer 503 (ErrBusy) or give up (ctx), unpadded
//	if the account exists and d.Allowed: verify against its hash
//	else: verify against the dummy hash and treat the result as a failure
//	release()
//	if the account exists and d.Allowed, in one transaction:
//	    re-read State; apply policy.Fail or policy.Succeed at now(); store it;
//	    record the events
//	timing.Pad(ctx, now()-start), then answer
//
// The hash runs outside the transaction so that a write lock is never held
// while waiting for argon2id; re-reading State inside it keeps concurrent
// failures from being lost. A success that races with a lockout leaves the
// lock in place (see [Policy.Succeed]).
//
// # Indistinguishable answers
//
// Unknown user, wrong password and locked account must give the same status,
// body and (as far as possible) timing, otherwise the endpoint is an oracle
// for which accounts exist or are locked. Consequences for callers:
//
//   - Do not show [Decision.RetryAfter] or [Decision.Reason] to the client:
//     only existing accounts lock, so either would reveal that the account
//     exists. Log them and record the events for audit instead. (The
//     per-source retryAfter from [SourceLimiter.Allow] is about the client's
//     own address and may be sent as Retry-After.)
//   - For unknown users and for locked accounts, verify the candidate password
//     against a dummy argon2id hash made once at start-up with the same
//     parameters as real hashes (password.Hash of random bytes with
//     password.DefaultParams), so that the dominant cost, tens of
//     milliseconds of argon2id, is paid on every path. Recompute the dummy
//     when the parameters change. Never accept a match against it.
//   - Pad every answer to at least [Timing.Min] with [Timing.Pad]. The dummy
//     hash equalises the hash, but smaller differences remain (an index hit or
//     miss, the State write and its fsync that only existing accounts incur)
//     and are measurable over many samples; a floor above the normal latency
//     hides them. Answers refused by the SourceLimiter or HashLimiter are not
//     padded: they say nothing about any account, and padding them would let
//     a flood hold connections open.
package bruteforce
