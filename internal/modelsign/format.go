package modelsign

// The wire format, field for field and in the order the reference tool
// writes it (checked against its v1.1.0 golden bundle in testdata).

const (
	bundleMediaType  = "application/vnd.dev.sigstore.bundle.v0.3+json"
	payloadType      = "application/vnd.in-toto+json"
	statementType    = "https://in-toto.io/Statement/v1"
	predicateType    = "https://model_signing/signature/v1.0"
	predicateTypeOld = "https://model_signing/Digests/v0.1" // reference v0.2
	methodFiles      = "files"
	hashSHA256       = "sha256"
)

type bundleJSON struct {
	MediaType            string                `json:"mediaType"`
	VerificationMaterial *verificationMaterial `json:"verificationMaterial"`
	DSSEEnvelope         *envelopeJSON         `json:"dsseEnvelope"`
	// Only read, to name what is unsupported.
	MessageSignature any `json:"messageSignature,omitempty"`
}

type verificationMaterial struct {
	PublicKey *publicKeyID `json:"publicKey,omitempty"`
	// Certificate-based material, only read to refuse it clearly.
	Certificate          any   `json:"certificate,omitempty"`
	X509CertificateChain any   `json:"x509CertificateChain,omitempty"`
	TlogEntries          []any `json:"tlogEntries"`
}

type publicKeyID struct {
	Hint string `json:"hint"`
	// RawBytes is the pre-v1.1 reference format; only read to refuse it.
	RawBytes string `json:"rawBytes,omitempty"`
}

type envelopeJSON struct {
	Payload     []byte         `json:"payload"` // base64 in JSON
	PayloadType string         `json:"payloadType"`
	Signatures  []signatureJSN `json:"signatures"`
}

type signatureJSN struct {
	Sig   []byte `json:"sig"`
	KeyID string `json:"keyid"`
}

type statementJSON struct {
	Type          string        `json:"_type"`
	Subject       []subjectJSON `json:"subject"`
	PredicateType string        `json:"predicateType"`
	Predicate     predicateJSON `json:"predicate"`
}

type subjectJSON struct {
	Name   string     `json:"name"`
	Digest digestJSON `json:"digest"`
}

type digestJSON struct {
	SHA256 string `json:"sha256"`
}

type predicateJSON struct {
	Resources     []resourceJSON    `json:"resources"`
	Serialization serializationJSON `json:"serialization"`
}

type resourceJSON struct {
	Algorithm string `json:"algorithm"`
	Name      string `json:"name"`
	Digest    string `json:"digest"`
}

type serializationJSON struct {
	AllowSymlinks bool     `json:"allow_symlinks"`
	Method        string   `json:"method"`
	HashType      string   `json:"hash_type"`
	IgnorePaths   []string `json:"ignore_paths"`
	ShardSize     *int64   `json:"shard_size,omitempty"` // only read, to refuse "shards"
}
