package securitytest

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/server"
)

// cbcSuites are the TLS 1.2 suites Go offers by default besides the AEAD
// ones: CBC with an HMAC (SHA-1 or SHA-256).
var cbcSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
}

// handshake connects to addr with TLS 1.2 offering only suites and
// returns the suite the server chose.
func handshake(t *testing.T, addr string, suites []uint16) (uint16, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: answerWait}, "tcp", addr, &tls.Config{
		InsecureSkipVerify: true, // the suite is under test, not the certificate
		MaxVersion:         tls.VersionTLS12,
		CipherSuites:       suites,
	})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().CipherSuite, nil
}

// TestTLSOffersOnlyAEADSuites: TLS 1.2 offered Go's default suites, CBC
// ones with SHA-1 MACs among them. Now a client offering only CBC suites
// is refused, an AEAD client gets an AEAD suite, TLS 1.3 works, and
// tls.cipherSuites can say otherwise (an unknown or insecure name stops
// the server at startup).
func TestTLSOffersOnlyAEADSuites(t *testing.T) {
	certPath, keyPath, _ := selfSigned(t, t.TempDir())
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	addr := runServer(t, server.Options{CertFile: certPath, KeyFile: keyPath, ReadHeaderTimeout: 5 * time.Second}, ok)

	if suite, err := handshake(t, addr, cbcSuites); err == nil {
		t.Fatalf("a client offering only CBC suites got %s", tls.CipherSuiteName(suite))
	}
	suite, err := handshake(t, addr, nil)
	if err != nil {
		t.Fatalf("default client: %v", err)
	}
	if name := tls.CipherSuiteName(suite); !strings.Contains(name, "GCM") && !strings.Contains(name, "CHACHA20") {
		t.Fatalf("default client got %s", name)
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatalf("TLS 1.3: %v", err)
	}
	conn.Close()

	// Configured otherwise: a CBC suite is what the operator asked for
	// (beside the suite HTTP/2 requires).
	cbc := runServer(t, server.Options{CertFile: certPath, KeyFile: keyPath, ReadHeaderTimeout: 5 * time.Second,
		CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"}}, ok)
	if suite, err := handshake(t, cbc, cbcSuites); err != nil || suite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA {
		t.Fatalf("configured CBC suite: %s, %v", tls.CipherSuiteName(suite), err)
	}

	for _, names := range [][]string{{"TLS_NO_SUCH_SUITE"}, {"TLS_RSA_WITH_RC4_128_SHA"}, {"TLS_AES_128_GCM_SHA256"},
		{"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"}} {
		err := server.Run(context.Background(), slog.New(slog.DiscardHandler),
			server.Options{Addr: "127.0.0.1:0", CertFile: certPath, KeyFile: keyPath, CipherSuites: names}, ok, nil)
		if err == nil || !strings.Contains(err.Error(), "tls.cipherSuites") {
			t.Errorf("suites %v: %v", names, err)
		}
	}
}
