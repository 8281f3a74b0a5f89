// Package modelsign produces and checks OpenSSF Model Signing (OMS) v1.0
// keyed signatures: a model directory's `model.sig`, a Sigstore bundle v0.3
// whose DSSE envelope signs an in-toto Statement listing every file's
// SHA-256, in the format the reference tool (sigstore/model-transparency,
// `model_signing sign key`, v1.1+) writes and reads.
//
// It owns the digest of a model directory (DigestDirectory), signing
// (Sign), and verification against public keys (Verify). It decides
// nothing about which keys are trusted for which domain: the caller passes
// a TrustedKeys lookup that encodes its trust policy. It never follows a
// symbolic link, never reads outside the directory it is given, never
// contacts the network (verification is offline, public keys only) and
// never hand-rolls cryptography: signatures are verified with
// github.com/sigstore/sigstore-go.
package modelsign
