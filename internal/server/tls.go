package server

import (
	"crypto/tls"
	"fmt"
	"slices"
)

// defaultCipherSuites are the TLS 1.2 suites offered unless configured:
// ECDHE key exchange (forward secrecy) with an AEAD cipher. Go's defaults
// also offer CBC suites with SHA-1 MACs (Lucky13-style padding oracles,
// a MAC below today's bar), which no client of a registry needs. TLS 1.3
// suites are all AEAD and are not configurable.
var defaultCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// cipherSuites resolves configured suite names (Go's names, as in
// crypto/tls: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"); none means the
// AEAD default. Only suites Go considers secure and that TLS 1.2 uses are
// accepted: a name Go lists as insecure (RC4, 3DES, ...) is an error, not
// a silent downgrade.
func cipherSuites(names []string) ([]uint16, error) {
	if len(names) == 0 {
		return slices.Clone(defaultCipherSuites), nil
	}
	known := map[string]uint16{}
	for _, s := range tls.CipherSuites() {
		if slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			known[s.Name] = s.ID
		}
	}
	ids := make([]uint16, 0, len(names))
	for _, name := range names {
		id, ok := known[name]
		if !ok {
			return nil, fmt.Errorf("tls.cipherSuites: %q is not a TLS 1.2 cipher suite Go considers secure", name)
		}
		ids = append(ids, id)
	}
	// HTTP/2 (RFC 7540, 9.2.2) requires this suite; net/http refuses to
	// serve without it, after listening.
	if !slices.Contains(ids, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) && !slices.Contains(ids, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256) {
		return nil, fmt.Errorf("tls.cipherSuites must include TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (HTTP/2 requires it)")
	}
	return ids, nil
}
