// Package pki owns Rampart's TLS certificates and the server's TLS
// configuration.
//
// By default it runs a private CA under DATA_DIR/tls: the CA is created on
// first start and kept, and the server certificate it signs is reissued at
// start when it no longer fits and renewed while serving, before it expires.
// Alternatively an operator supplies the certificate and key, which are
// reloaded when their files change. A client CA bundle turns on mutual TLS.
//
// pki never logs, returns or otherwise exposes private keys. It writes key
// files 0600 and refuses to use its own key files when group or world can
// read them.
package pki
