// Package store defines Rampart's persistent state: the interfaces every backend
// implements, the records they hold and the sentinel errors they return.
//
// It owns no storage itself. Backends live in sub-packages (sqlite now, postgres
// later) and must pass the conformance suite in storetest. Callers change state
// only inside InTx, so a change and its audit record commit together or not at all.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers test with errors.Is.
var (
	// ErrNotFound: the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record would violate a uniqueness rule (e.g. duplicate name).
	ErrConflict = errors.New("conflict")
	// ErrCorrupt: the database file is damaged or is not a database at all.
	ErrCorrupt = errors.New("database is corrupt")
	// ErrSchemaTooNew: the database was migrated by a newer Rampart than this binary.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store is closed")
)

// Store is a transactional state store.
type Store interface {
	// InTx runs fn in one read-write transaction. If fn returns an error (or
	// panics) every change it made is rolled back and the error is returned.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Ping reports whether the store is open and migrated (used by /readyz).
	Ping(ctx context.Context) error
	// Close releases the store. Later calls return ErrClosed.
	Close() error
}

// Tx is the set of repositories available inside a transaction.
type Tx interface {
	Accounts() Accounts
	SigningKeys() SigningKeys
	ServiceAccounts() ServiceAccounts
	Sessions() Sessions
	Domains() Domains
	Grants() Grants
	Audit() Audit
	Models() Models
	SignerKeys() SignerKeys
	Services() Services
	SealedSecrets() SealedSecrets
}

// SealedSecrets lists and replaces, across tables, every value the
// database holds sealed under the master key, so master key rotation can
// re-seal them all in one transaction. It never sees a plaintext: opening
// and sealing belong to the caller (internal/rekey).
type SealedSecrets interface {
	// ListSealedSecrets returns every sealed value of kind, ordered by
	// owner. Owners without one (an account with no TOTP) are left out.
	ListSealedSecrets(ctx context.Context, kind SecretKind) ([]SealedSecret, error)
	// ReplaceSealedSecret replaces the sealed value of (s.Kind, s.Owner);
	// ErrNotFound if no such owner holds one.
	ReplaceSealedSecret(ctx context.Context, s SealedSecret) error
}

// SecretKind names a kind of sealed value kept in the database.
type SecretKind string

// Sealed values kept in the database, and whom each belongs to.
const (
	// SecretSigningKey: SigningKey.SealedPrivate; Owner is the key id.
	SecretSigningKey SecretKind = "signing-key"
	// SecretTOTP: Account.TOTPSecret; Owner is the account id.
	SecretTOTP SecretKind = "totp"
	// SecretPseudonym: an audit pseudonym secret; Owner is the subject id.
	SecretPseudonym SecretKind = "pseudonym"
)

// SecretKinds lists every SecretKind.
var SecretKinds = []SecretKind{SecretSigningKey, SecretTOTP, SecretPseudonym}

// SealedSecret is one sealed value and its owner.
type SealedSecret struct {
	Kind   SecretKind
	Owner  string
	Sealed []byte
}

// SigningKeys holds the keys that sign Rampart's tokens.
type SigningKeys interface {
	// CreateSigningKey inserts k; ErrConflict if the id is taken.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every stored key, oldest first (by creation,
	// then by end of signing, so a key retired at its successor's creation
	// comes first).
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKeys ends signing at signUntil for every key still signing
	// after it, and publishes them until publishUntil.
	RetireSigningKeys(ctx context.Context, signUntil, publishUntil time.Time) error
	// DeleteExpiredSigningKeys removes keys no longer published at now.
	DeleteExpiredSigningKeys(ctx context.Context, now time.Time) error
}

// SigningKey is a stored token-signing key. SealedPrivate is the PKCS#8
// private key sealed under the master key; it is never stored in clear.
type SigningKey struct {
	ID            string
	Algorithm     string
	SealedPrivate []byte
	CreatedAt     time.Time
	SignUntil     time.Time
	PublishUntil  time.Time
}

// Accounts holds human user accounts.
type Accounts interface {
	// CreateAccount inserts a; it returns ErrConflict if the ID or name is taken.
	CreateAccount(ctx context.Context, a Account) error
	// AccountByName returns the account called name, or ErrNotFound.
	AccountByName(ctx context.Context, name string) (Account, error)
	// AccountByID returns account id, or ErrNotFound.
	AccountByID(ctx context.Context, id string) (Account, error)
	// ListAccounts returns every account ordered by name.
	ListAccounts(ctx context.Context) ([]Account, error)
	// UpdateAccount replaces every field of the account with a.ID except
	// CreatedAt; ErrNotFound if there is none, ErrConflict if a.Name is taken.
	UpdateAccount(ctx context.Context, a Account) error
	// DeleteAccount removes account id and its login state; ErrNotFound if
	// there is none, ErrConflict while it owns service accounts.
	DeleteAccount(ctx context.Context, id string) error
	// SetPasswordHash replaces the stored hash of account id, or returns ErrNotFound.
	SetPasswordHash(ctx context.Context, id, hash string) error
	// CountAccounts returns how many accounts exist.
	CountAccounts(ctx context.Context) (int, error)
	// LoginState returns the brute-force protection state of account id (the
	// zero LoginState if nothing was recorded), or ErrNotFound if there is no
	// such account.
	LoginState(ctx context.Context, id string) (LoginState, error)
	// SetLoginState replaces the state of account id, or returns ErrNotFound.
	SetLoginState(ctx context.Context, id string, s LoginState) error
}

// LoginState is an account's brute-force protection record: consecutive
// failures, temporary lockouts so far, and the current lock. Zero times
// mean unset.
type LoginState struct {
	Failures    int
	Lockouts    int
	LockedUntil time.Time
	Permanent   bool
	LastFailure time.Time
}

// Account is a human user. PasswordHash is a PHC-format argon2id string; no
// other password form is ever stored.
type Account struct {
	ID           string
	Name         string
	Email        string // "" when not given
	PasswordHash string
	Admin        bool
	// Auditor may read the whole audit log and resolve pseudonyms. It is
	// separate from Admin: reading who did what is a duty of its own.
	Auditor bool
	// MustChangePassword is set when the password was generated or reset by
	// someone other than the user.
	MustChangePassword bool
	// Disabled accounts cannot log in and their tokens are refused.
	Disabled bool
	// Anonymized is set when the user deleted their account while owning
	// resources: name and e-mail were replaced and the row stays only as an
	// owner reference. It implies Disabled.
	Anonymized bool
	// TOTPSecret is the RFC 6238 secret sealed under the master key; nil
	// when the user has no second factor.
	TOTPSecret []byte
	// TOTPLastStep is the last time step a TOTP code was accepted for, so
	// a code cannot be used twice (RFC 6238 section 5.2).
	TOTPLastStep int64
	CreatedAt    time.Time
}

// ServiceAccounts holds machine identities and their credentials.
type ServiceAccounts interface {
	// CreateServiceAccount inserts sa; ErrConflict if the id or name is
	// taken, ErrNotFound if sa.OwnerID is not an account.
	CreateServiceAccount(ctx context.Context, sa ServiceAccount) error
	// ServiceAccountByID and ServiceAccountByName return one, or ErrNotFound.
	ServiceAccountByID(ctx context.Context, id string) (ServiceAccount, error)
	ServiceAccountByName(ctx context.Context, name string) (ServiceAccount, error)
	// ListServiceAccounts returns every service account ordered by name.
	ListServiceAccounts(ctx context.Context) ([]ServiceAccount, error)
	// UpdateServiceAccount replaces Description, OwnerID, Disabled and
	// ExpiresAt of sa.ID; ErrNotFound if there is none.
	UpdateServiceAccount(ctx context.Context, sa ServiceAccount) error
	// DeleteServiceAccount removes sa and its secrets and keys; ErrNotFound
	// if there is none.
	DeleteServiceAccount(ctx context.Context, id string) error

	// AddClientSecret stores s; ErrNotFound if its service account does
	// not exist, ErrConflict if the id is taken.
	AddClientSecret(ctx context.Context, s ClientSecret) error
	// ClientSecrets returns the secrets of a service account, oldest first
	// (expired ones included; callers check ExpiresAt).
	ClientSecrets(ctx context.Context, serviceAccountID string) ([]ClientSecret, error)
	// ExpireClientSecrets makes every secret of the service account that
	// would be valid after at expire at at (rotation with overlap).
	ExpireClientSecrets(ctx context.Context, serviceAccountID string, at time.Time) error
	// DeleteClientSecret removes one secret; ErrNotFound if there is none.
	DeleteClientSecret(ctx context.Context, serviceAccountID, id string) error

	// AddClientKey stores k; ErrNotFound if its service account does not
	// exist, ErrConflict if the key id is taken for that account.
	AddClientKey(ctx context.Context, k ClientKey) error
	// ClientKeys returns the public keys of a service account, oldest first.
	ClientKeys(ctx context.Context, serviceAccountID string) ([]ClientKey, error)
	// DeleteClientKey removes one key; ErrNotFound if there is none.
	DeleteClientKey(ctx context.Context, serviceAccountID, id string) error
}

// ServiceAccount is a machine identity. Its ID (sa-…) is its OAuth client id.
type ServiceAccount struct {
	ID          string
	Name        string
	Description string
	// OwnerID is the account that created it (or was given it).
	OwnerID   string
	Disabled  bool
	ExpiresAt time.Time // zero: never
	CreatedAt time.Time
}

// ClientSecret is a service account secret. Only its SHA-256 is stored:
// secrets are 256-bit random strings, so a fast hash is enough and a slow
// one would cap token issuance.
type ClientSecret struct {
	ID               string
	ServiceAccountID string
	Hash             []byte
	CreatedAt        time.Time
	ExpiresAt        time.Time // zero: never
}

// ClientKey is a public key a service account signs private_key_jwt
// client assertions with; PublicKey is its JWK (JSON).
type ClientKey struct {
	ID               string
	ServiceAccountID string
	PublicKey        []byte
	CreatedAt        time.Time
	ExpiresAt        time.Time // zero: never
}

// Sessions holds token families: a session is one login (or one client
// credentials grant with refresh) and every refresh token rotated from it.
// Revoking a session revokes all its tokens.
type Sessions interface {
	// CreateSession inserts s; ErrConflict if the id is taken.
	CreateSession(ctx context.Context, s Session) error
	// SessionByID returns session id, or ErrNotFound.
	SessionByID(ctx context.Context, id string) (Session, error)
	// RevokeSession marks session id revoked at at (a no-op if it already
	// is); ErrNotFound if there is none.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// RevokeSessionsOf revokes every unrevoked session of subject and
	// returns their ids.
	RevokeSessionsOf(ctx context.Context, subject string, at time.Time) ([]string, error)

	// CreateRefreshToken inserts t; ErrNotFound if its session does not
	// exist, ErrConflict if the hash is taken.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshTokenByHash returns the token with this hash, or ErrNotFound.
	RefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error)
	// UseRefreshToken marks the token used at at. It returns ErrConflict if
	// it was already used (a replay) and ErrNotFound if there is none.
	UseRefreshToken(ctx context.Context, hash []byte, at time.Time) error

	// RevokeAccessToken records that the access token with id (its jti) is
	// revoked until it expires; revoking twice is not an error.
	RevokeAccessToken(ctx context.Context, t RevokedToken) error
	// Revocations returns the revoked access tokens and the revoked
	// sessions whose ExpiresAt is after now.
	Revocations(ctx context.Context, now time.Time) (tokens, sessions []RevokedToken, err error)
	// DeleteExpiredSessions removes sessions (with their refresh tokens)
	// and revoked access tokens whose ExpiresAt is before now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) error
}

// Session is a token family.
type Session struct {
	ID       string
	Subject  string // account or service account id
	ClientID string
	Scopes   []string
	AMR      []string // authentication methods, e.g. ["pwd", "otp"]
	AuthTime time.Time
	// ExpiresAt ends the family: no refresh after it, and every access
	// token it issued has expired by then.
	ExpiresAt time.Time
	CreatedAt time.Time
	RevokedAt time.Time // zero while active
}

// RefreshToken is one refresh token of a session. Only the SHA-256 of the
// token is stored.
type RefreshToken struct {
	Hash      []byte
	SessionID string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until exchanged
}

// RevokedToken is a revoked access token (or session) id and when the
// revocation can be forgotten because the token has expired anyway.
type RevokedToken struct {
	ID        string
	ExpiresAt time.Time
}

// Domains holds access-control domains: dot-separated names such as
// com.acme.vision. Names are validated by the caller (internal/access); the
// wildcard "*" is not a domain and cannot be stored as one.
type Domains interface {
	// CreateDomain inserts d; ErrConflict if the name is taken.
	CreateDomain(ctx context.Context, d Domain) error
	// ListDomains returns every domain ordered by name.
	ListDomains(ctx context.Context) ([]Domain, error)
	// DomainExists reports whether a domain called name exists.
	DomainExists(ctx context.Context, name string) (bool, error)
	// DeleteDomain removes domain name; ErrNotFound if there is none,
	// ErrConflict while a grant (or, later, a target) names it.
	DeleteDomain(ctx context.Context, name string) error
}

// Domain is an access-control domain.
type Domain struct {
	Name      string
	CreatedBy string // id of the account that created it
	CreatedAt time.Time
}

// Grants holds the grants that give a subject a privilege on a domain (and
// its subdomains) or on the wildcard "*".
type Grants interface {
	// CreateGrant inserts g; ErrConflict if the id is taken or the subject
	// already has a grant on g.Domain, ErrNotFound if g.Domain is neither
	// "*" nor an existing domain.
	CreateGrant(ctx context.Context, g Grant) error
	// ListGrants returns every grant ordered by domain, subject kind and
	// subject id.
	ListGrants(ctx context.Context) ([]Grant, error)
	// GrantByID returns grant id, or ErrNotFound.
	GrantByID(ctx context.Context, id string) (Grant, error)
	// DeleteGrant removes grant id; ErrNotFound if there is none.
	DeleteGrant(ctx context.Context, id string) error
	// DeleteGrantsOfSubject removes every grant of the subject (kind, id),
	// e.g. of a deleted account, and returns how many there were.
	DeleteGrantsOfSubject(ctx context.Context, kind, id string) (int, error)
	// AccessVersion is a counter that every change to domains or grants
	// increases in the same transaction (so a rollback undoes it, and
	// reads and failed changes leave it alone), so caches in other
	// processes can tell cheaply whether to reload. Callers may rely on it
	// changing, not on by how much.
	AccessVersion(ctx context.Context) (int64, error)
}

// Grant gives a subject a privilege on a domain.
type Grant struct {
	ID          string
	SubjectKind string // "user", "group" or "service-account"
	SubjectID   string // the id of the user, group or service account
	Domain      string // a domain name, or "*" for targets without a domain
	Privilege   string // "infer", "read" or "all"
	CreatedBy   string // id of the account that created it
	CreatedAt   time.Time
}

// Audit holds the tamper-evident audit log: records chained by hash,
// signed checkpoints of the chain head, and the per-subject secrets that
// actors' pseudonyms are keyed with. Hashing, signing and verification
// belong to internal/audit; the store only keeps what it is given.
//
// Records and checkpoints are append-only: the store offers no way to
// change or delete them, and backends refuse it below the API too (SQLite:
// triggers), except pruning below a signed "prune" checkpoint.
type Audit interface {
	// AppendAuditRecord inserts r if it links to the head: r.PrevHash is
	// the Hash of the record with the highest Seq (32 zero bytes for an
	// empty log) and r.Seq the next number. Otherwise, or if r.Seq is
	// taken, ErrConflict: the caller chained to a head that is not the
	// current one (read it again, or retry the transaction).
	AppendAuditRecord(ctx context.Context, r AuditRecord) error
	// AuditHead returns the record with the highest Seq; ok is false when
	// the log is empty.
	AuditHead(ctx context.Context) (r AuditRecord, ok bool, err error)
	// AuditHeadLink returns only the Seq and Hash of the record with the
	// highest Seq, what the next record chains to: every audited change
	// reads it, so it reads no more than that.
	AuditHeadLink(ctx context.Context) (seq uint64, hash []byte, ok bool, err error)
	// AuditRecords returns up to limit (> 0) records with Seq > afterSeq in
	// Seq order, so a reader can stream the log in batches.
	AuditRecords(ctx context.Context, afterSeq uint64, limit int) ([]AuditRecord, error)
	// AddAuditCheckpoint stores c. Several checkpoints may name the same
	// Seq (a periodic and a shutdown one with nothing appended between).
	// A prune checkpoint must name an existing record by its Hash
	// (ErrConflict otherwise): it is what allows deleting records.
	AddAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// AuditCheckpoints returns every checkpoint ordered by Seq, then in the
	// order they were added.
	AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)

	// FindAuditRecords returns up to q.Limit (> 0) records matching q in
	// Seq order (exports, a subject's own records).
	FindAuditRecords(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
	// FirstAuditSeqAt returns the lowest Seq of a record with Time at or
	// after t; ok is false when there is none.
	FirstAuditSeqAt(ctx context.Context, t time.Time) (seq uint64, ok bool, err error)
	// PruneAuditRecords deletes every record with Seq <= throughSeq and
	// returns how many. Backends refuse it unless a prune checkpoint at
	// throughSeq or above exists (add it first, in the same transaction).
	PruneAuditRecords(ctx context.Context, throughSeq uint64) (int64, error)

	// SetPseudonymSecret stores the secret that subjectID's pseudonym is
	// keyed with, and the pseudonym itself (so it can be resolved). The
	// secret is opaque to the store (callers seal it under the master
	// key); ErrConflict if the subject has one already, because replacing
	// it would silently unlink the subject from their records.
	SetPseudonymSecret(ctx context.Context, subjectID, pseudonym string, secret []byte) error
	// PseudonymSecret returns the secret of subjectID, or ErrNotFound.
	PseudonymSecret(ctx context.Context, subjectID string) ([]byte, error)
	// SubjectByPseudonym returns the subject a pseudonym stands for, or
	// ErrNotFound (never existed, or erased).
	SubjectByPseudonym(ctx context.Context, pseudonym string) (string, error)
	// AddErasedSubject stores the tombstone tag (a keyed hash of an erased
	// subject's id, 32 bytes); adding one twice is not an error.
	AddErasedSubject(ctx context.Context, tag []byte) error
	// IsErasedSubject reports whether tag was added.
	IsErasedSubject(ctx context.Context, tag []byte) (bool, error)
	// DeletePseudonymSecret removes the secret of subjectID (erasure by
	// crypto-shredding: their records stay, but can no longer be linked to
	// them); ErrNotFound if there is none.
	DeletePseudonymSecret(ctx context.Context, subjectID string) error
}

// AuditQuery selects audit records. Zero fields do not filter.
type AuditQuery struct {
	AfterSeq uint64
	// Since keeps records whose Time is at or after it.
	Since time.Time
	// Subject keeps records whose actor or target id is this pseudonym.
	Subject string
	Limit   int
}

// AuditRecord is one entry of the audit log: the event's fields as columns
// (so later exports and pruning can select on them) plus its place in the
// hash chain. Hash is computed by internal/audit over PrevHash, Seq and
// the canonical encoding of the event fields; the store does not check it.
// Seq starts at 1 and must fit in an int64.
type AuditRecord struct {
	Seq          uint64
	Time         time.Time
	Actor        string // a pseudonym or a system name, never a user name
	ActorKind    string
	Source       string // a pseudonym of the client address, or ""
	Action       string
	TargetKind   string
	TargetDomain string
	TargetID     string
	Outcome      string
	Reason       string
	RequestID    string
	PrevHash     []byte
	Hash         []byte
}

// AuditCheckpoint is a signature over the chain head: the Hash of record
// Seq (or the genesis hash when Seq is 0), the time and the kind
// ("periodic", "shutdown" or "prune"), made with the audit signing key.
type AuditCheckpoint struct {
	Seq       uint64
	Head      []byte
	Kind      string
	Time      time.Time
	Signature []byte
}

// Models holds the model registry: models, their immutable versions and
// each version's files. Ids and versions are validated by the caller
// (internal/registry).
type Models interface {
	// CreateModel inserts m; ErrConflict if the id is taken, ErrNotFound
	// if m.Domain is neither "*" nor an existing domain.
	CreateModel(ctx context.Context, m Model) error
	// ModelByID returns model id, or ErrNotFound.
	ModelByID(ctx context.Context, id string) (Model, error)
	// ListModels returns every model ordered by id.
	ListModels(ctx context.Context) ([]Model, error)
	// UpdateModel replaces the title and description of model m.ID;
	// ErrNotFound if there is none.
	UpdateModel(ctx context.Context, m Model) error
	// DeleteModel removes model id; ErrNotFound if there is none,
	// ErrConflict while it has versions.
	DeleteModel(ctx context.Context, id string) error

	// CreateModelVersion inserts v with its files; ErrConflict if the
	// version exists, ErrNotFound if the model does not.
	CreateModelVersion(ctx context.Context, v ModelVersion) error
	// ModelVersion returns a version with its files, or ErrNotFound.
	ModelVersion(ctx context.Context, modelID, version string) (ModelVersion, error)
	// ListModelVersions returns the versions of a model (without files)
	// ordered by creation time; empty if it has none.
	ListModelVersions(ctx context.Context, modelID string) ([]ModelVersion, error)
	// SetModelVersionState changes a version's state and its reason (the
	// only change a version admits); ErrNotFound if there is none.
	SetModelVersionState(ctx context.Context, modelID, version, state, reason string) error
	// DeleteModelVersion removes a version and its files; ErrNotFound if
	// there is none, ErrConflict while a model service deploys it.
	DeleteModelVersion(ctx context.Context, modelID, version string) error
	// CountFilesWithDigest returns how many files of versions of models in
	// domain have this digest: a blob may be deleted from the artifact
	// store only when none does.
	CountFilesWithDigest(ctx context.Context, domain, digest string) (int, error)

	// SetUnsignedAllowed turns the admission of unsigned models on or off
	// for domain ("*" for models without one); ErrNotFound if the domain
	// does not exist.
	SetUnsignedAllowed(ctx context.Context, domain string, allowed bool, by string, at time.Time) error
	// UnsignedAllowed lists the domains that admit unsigned models.
	UnsignedAllowed(ctx context.Context) ([]string, error)
}

// Model is a registered model. Its id encodes its domain
// (com.acme.vision.resnet is in com.acme.vision); Domain is "*" for a
// model without one.
type Model struct {
	ID          string
	Domain      string
	Title       string
	Description string
	CreatedBy   string // id of the account that onboarded it
	CreatedAt   time.Time
}

// Model version states.
const (
	VersionActive      = "active"
	VersionQuarantined = "quarantined" // its bytes no longer matched their digests
)

// ModelVersion is an immutable version of a model: a directory of files,
// verified at onboarding.
type ModelVersion struct {
	ModelID     string
	Version     string
	State       string // VersionActive or VersionQuarantined
	StateReason string
	ModelFile   string // the path of the ONNX file among Files
	// SubjectDigest is the OMS subject digest (SHA-256 hex over the files'
	// digests in path order).
	SubjectDigest string
	Signed        bool
	SignerKeyID   string // "" when admitted unsigned
	VerifiedAt    time.Time
	Metadata      string // ONNX metadata as JSON
	Files         []ModelFile
	CreatedBy     string
	CreatedAt     time.Time
}

// ModelFile is one file of a version.
type ModelFile struct {
	Path   string // POSIX path relative to the model directory
	Size   int64
	Digest string // SHA-256 hex of the content: its address in the artifact store
}

// SignerKeys holds the public keys trusted to sign a domain's models (and
// its subdomains'), or those of models without a domain ("*").
type SignerKeys interface {
	// AddSignerKey inserts k; ErrConflict if the id is taken, ErrNotFound
	// if k.Domain is neither "*" nor an existing domain.
	AddSignerKey(ctx context.Context, k SignerKey) error
	// SignerKeyByID returns key id, or ErrNotFound.
	SignerKeyByID(ctx context.Context, id string) (SignerKey, error)
	// ListSignerKeys returns every key ordered by domain and id.
	ListSignerKeys(ctx context.Context) ([]SignerKey, error)
	// RevokeSignerKey marks key id revoked at; ErrNotFound if there is
	// none, ErrConflict if it is revoked already.
	RevokeSignerKey(ctx context.Context, id string, at time.Time) error
	// DeleteSignerKey removes key id; ErrNotFound if there is none,
	// ErrConflict unless it was revoked first.
	DeleteSignerKey(ctx context.Context, id string) error
}

// SignerKey is a public key trusted for a domain within a validity period.
type SignerKey struct {
	ID          string // the key's hint: hex SHA-256 of its PEM text
	Domain      string
	PublicKey   string // PEM
	Algorithm   string // e.g. "ecdsa-p256", "ed25519"
	Description string
	NotBefore   time.Time
	NotAfter    time.Time // zero: no expiry
	RevokedAt   time.Time // zero: not revoked
	CreatedBy   string
	CreatedAt   time.Time
}

// Services holds model services: deployments of one model version under a
// name of their own (the {name} of /v2/models/{name}). Names, domains and
// limits are validated by the caller (internal/services); the store keeps
// the records consistent with the domains and the registry.
type Services interface {
	// CreateService inserts s; ErrConflict if the name is taken,
	// ErrNotFound if s.Domain is neither "*" nor an existing domain, or if
	// the model version does not exist.
	CreateService(ctx context.Context, s Service) error
	// ServiceByName returns service name, or ErrNotFound.
	ServiceByName(ctx context.Context, name string) (Service, error)
	// ListServices returns every service ordered by name.
	ListServices(ctx context.Context) ([]Service, error)
	// UpdateServiceSpec replaces the replicas, limits and timeout of
	// service name; ErrNotFound if there is none.
	UpdateServiceSpec(ctx context.Context, name string, spec ServiceSpec, at time.Time) error
	// SetServiceDesired sets the state the supervisor is to reach
	// (ServiceRunning or ServiceStopped); ErrNotFound if there is none.
	SetServiceDesired(ctx context.Context, name, desired string, at time.Time) error
	// SetServiceState records the actual state and its reason; the caller
	// (internal/services) checks the transition. ErrNotFound if there is none.
	SetServiceState(ctx context.Context, name, state, reason string, at time.Time) error
	// DeleteService removes service name; ErrNotFound if there is none.
	DeleteService(ctx context.Context, name string) error
}

// Desired states of a service.
const (
	ServiceRunning = "running"
	ServiceStopped = "stopped"
)

// ServiceSpec is what a service may be changed in after creation: its
// replicas (worker processes) and each replica's limits.
type ServiceSpec struct {
	Replicas      int
	MemoryBytes   int64 // per replica
	Threads       int   // CPU threads per replica
	MaxConcurrent int   // requests in flight per replica
	TimeoutMS     int64 // per request
}

// Service is a model service. Domain is "*" for a service without one.
// State is one of internal/services' states ("created", "starting",
// "ready", "stopping", "stopped", "failed").
type Service struct {
	Name         string
	Domain       string
	ModelID      string
	ModelVersion string
	Spec         ServiceSpec
	DesiredState string // ServiceRunning or ServiceStopped
	State        string
	StateReason  string // machine text; "" when there is nothing to say
	CreatedBy    string // id of the account that created it
	CreatedAt    time.Time
	UpdatedAt    time.Time
}
