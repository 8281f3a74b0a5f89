package doctor

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"
)

// Expiry thresholds: a server certificate is renewed (private CA) or must
// be replaced (operator) within a month; replacing the CA means handing a
// new ca.pem to every client, so it is flagged a year ahead (as the server
// logs at start).
const (
	CertWarnBefore = 30 * 24 * time.Hour
	CAWarnBefore   = 365 * 24 * time.Hour
)

// Certificate checks one certificate: validity now, time left (WARN below
// warnBefore, FAIL when expired), and its key and signature algorithms.
// renew is the fix for an expiring certificate.
func Certificate(id, file string, cert *x509.Certificate, now time.Time, warnBefore time.Duration, renew string) []Result {
	var rs []Result
	left := cert.NotAfter.Sub(now)
	switch {
	case left <= 0:
		rs = append(rs, fail(id+".expiry", renew, "%s expired on %s", file, cert.NotAfter.UTC().Format(time.DateOnly)))
	case now.Before(cert.NotBefore):
		rs = append(rs, fail(id+".expiry", "check this host's clock, or reissue the certificate",
			"%s is not valid before %s", file, cert.NotBefore.UTC().Format(time.RFC3339)))
	case left < warnBefore:
		rs = append(rs, warn(id+".expiry", renew, "%s expires in %d days (%s)", file, days(left), cert.NotAfter.UTC().Format(time.DateOnly)))
	default:
		rs = append(rs, pass(id+".expiry", "%s valid for %d more days", file, days(left)))
	}
	rs = append(rs, keyStrength(id+".key", file, cert))
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.MD2WithRSA:
		rs = append(rs, fail(id+".signature", "reissue the certificate with a SHA-256 (or stronger) signature",
			"%s is signed with %s, which is broken", file, cert.SignatureAlgorithm))
	}
	return rs
}

func days(d time.Duration) int { return int(d / (24 * time.Hour)) }

// keyStrength accepts ECDSA P-256 and up, Ed25519 and RSA of 2048 bits and
// up (NIST SP 800-57: 112-bit security at least).
func keyStrength(id, file string, cert *x509.Certificate) Result {
	const fix = "reissue the certificate with an ECDSA P-256 (or stronger) or RSA 3072 key"
	switch k := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if bits := k.Curve.Params().BitSize; bits < 256 {
			return fail(id, fix, "%s has an ECDSA key of %d bits", file, bits)
		}
		return pass(id, "%s: ECDSA %s", file, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < 2048 {
			return fail(id, fix, "%s has an RSA key of %d bits", file, bits)
		}
		return pass(id, "%s: RSA %d bits", file, k.N.BitLen())
	case ed25519.PublicKey:
		return pass(id, "%s: Ed25519", file)
	default:
		return fail(id, fix, "%s has an unsupported key type %T", file, k)
	}
}

// MissingFile is the FAIL for a file a working installation has.
func MissingFile(id, file, fix string) Result {
	return fail(id, fix, "%s is missing", file)
}

// ServerTLS checks what a client saw when it connected to the server:
// the protocol version and the certificate it was given.
func ServerTLS(url string, state tls.ConnectionState, now time.Time) []Result {
	var rs []Result
	if state.Version < tls.VersionTLS12 {
		rs = append(rs, fail("server.tls-version", "serve TLS 1.2 or later only",
			"%s negotiated %s", url, tls.VersionName(state.Version)))
	} else {
		rs = append(rs, pass("server.tls-version", "%s negotiated %s, %s", url, tls.VersionName(state.Version), tls.CipherSuiteName(state.CipherSuite)))
	}
	if len(state.PeerCertificates) == 0 {
		return append(rs, fail("server.cert", "serve over TLS", "%s presented no certificate", url))
	}
	return append(rs, Certificate("server.cert", fmt.Sprintf("the certificate of %s", url), state.PeerCertificates[0], now, CertWarnBefore,
		"renew the server certificate (the private CA renews it at the next start)")...)
}
