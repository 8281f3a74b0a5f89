package modelsign

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// Sign returns the contents of model.sig for m, signed with key (ECDSA
// P-256/P-384/P-521 or Ed25519): a Sigstore bundle v0.3 whose public-key
// hint is KeyID(key.Public()), as `model_signing sign key` writes it.
func Sign(m Manifest, key crypto.Signer) ([]byte, error) {
	pub := key.Public()
	hint, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	if len(m.Files) == 0 {
		return nil, ErrEmptyModel
	}
	payload, err := statementPayload(m)
	if err != nil {
		return nil, err
	}
	msg := pae(payloadType, payload)
	h := hashFor(pub)
	digest := msg
	if h != 0 {
		hh := h.New()
		hh.Write(msg)
		digest = hh.Sum(nil)
	}
	sig, err := key.Sign(rand.Reader, digest, h)
	if err != nil {
		return nil, fmt.Errorf("sign model statement: %w", err)
	}
	b := bundleJSON{
		MediaType: bundleMediaType,
		VerificationMaterial: &verificationMaterial{
			PublicKey:   &publicKeyID{Hint: hint},
			TlogEntries: []any{},
		},
		DSSEEnvelope: &envelopeJSON{
			Payload:     payload,
			PayloadType: payloadType,
			Signatures:  []signatureJSN{{Sig: sig}},
		},
	}
	return marshal(b, "")
}

// statementPayload is the in-toto Statement the envelope signs, laid out
// as the reference writes it (protobuf JSON, two-space indent).
func statementPayload(m Manifest) ([]byte, error) {
	resources := make([]resourceJSON, 0, len(m.Files))
	for i, f := range m.Files {
		if !validName(f.Name) {
			return nil, fmt.Errorf("file name %q is not a clean relative path", f.Name)
		}
		if i > 0 && comparePaths(m.Files[i-1].Name, f.Name) >= 0 {
			return nil, fmt.Errorf("manifest files are not sorted and unique at %q", f.Name)
		}
		resources = append(resources, resourceJSON{Algorithm: hashSHA256, Name: f.Name, Digest: f.DigestHex()})
	}
	ignore := m.IgnorePaths
	if ignore == nil {
		ignore = []string{}
	}
	subject := m.SubjectDigest()
	st := statementJSON{
		Type:          statementType,
		Subject:       []subjectJSON{{Name: m.ModelName, Digest: digestJSON{SHA256: hex.EncodeToString(subject[:])}}},
		PredicateType: predicateType,
		Predicate: predicateJSON{
			Resources:     resources,
			Serialization: serializationJSON{Method: methodFiles, HashType: hashSHA256, IgnorePaths: ignore},
		},
	}
	return marshal(st, "  ")
}

// marshal encodes without HTML escaping and without the trailing newline.
func marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode signature: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// pae is DSSE's pre-authentication encoding, the bytes actually signed:
// "DSSEv1" SP len(type) SP type SP len(body) SP body. Verification goes
// through sigstore-go's own DSSE code, so a mistake here cannot pass the
// round-trip tests.
func pae(typ string, body []byte) []byte {
	b := make([]byte, 0, 32+len(typ)+len(body))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(typ)), 10)
	b = append(b, ' ')
	b = append(b, typ...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, ' ')
	return append(b, body...)
}
