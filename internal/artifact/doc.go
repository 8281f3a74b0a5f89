// Package artifact stores model files as content-addressed blobs, encrypted
// at rest with a separate data key per domain.
//
// A blob is named by the SHA-256 of its plaintext and stored under its
// domain. Each domain has its own age X25519 identity (its data key), kept
// sealed by the master key (internal/secrets) with the domain bound in the
// associated data; blobs are encrypted to the domain's recipient with age's
// STREAM construction (ChaCha20-Poly1305 in 64 KiB authenticated chunks,
// truncation detected). Put and Open stream: memory use does not grow with
// the blob size. The package owns the blob bytes and the data keys; it keeps
// no index, so the registry records which digests belong to which version
// in its database.
//
// # Using it
//
// The registry calls Put while an upload streams in and records the
// returned digest and size with the version in its database (the store
// keeps no index); it serves and re-verifies with Open, reading to EOF
// before trusting or committing anything (the digest check happens there)
// and always closing the reader; it deletes a version's blobs with Delete
// once no row refers to them, and a whole domain with DeleteDomain.
// RotateMasterKey runs with the old and new master keys both available;
// the new master key file replaces the old only after it returns.
//
// # Threat model
//
// Encryption at rest protects against someone who reads the storage
// without the master key: a stolen or discarded disk, a copied backup or
// snapshot, a misconfigured bucket. They learn blob sizes, the digests
// (which confirm whether a domain holds a file they already have) and how
// many domains there are, but no contents. One domain's data key never
// opens another domain's blobs, and a data key moved to another domain's
// file does not unseal. DeleteDomain crypto-shreds: once the domain's
// sealed key is gone, its blobs cannot be decrypted even from a backup
// taken before, as long as the backup does not also hold the old key file
// (keep keys/ out of long-lived backups, or accept that a restore of both
// restores the data). Tampering is detected: Open's reader fails with
// ErrCorrupt instead of returning altered bytes.
//
// It does not protect against a compromised running server, which holds
// the master key and every unsealed data key it uses, nor against someone
// who has both the storage and the master key file. Keep the master key
// (DATA_DIR/keys/master.key, or a file the operator supplies) apart from
// the blob storage and its backups.
package artifact
