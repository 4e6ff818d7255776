package server

import (
	"net"
	"testing"
)

// TestClientKey: connections are counted per IPv4 address and per IPv6
// /64 (one host's block), an IPv4-mapped IPv6 address as the IPv4 one.
func TestClientKey(t *testing.T) {
	key := func(ip string) string { return clientKey(&net.TCPAddr{IP: net.ParseIP(ip), Port: 1234}) }
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"::ffff:192.0.2.1", "192.0.2.1", true},
	} {
		if got := key(tc.a) == key(tc.b); got != tc.same {
			t.Errorf("%s and %s counted together: %v (%q, %q)", tc.a, tc.b, got, key(tc.a), key(tc.b))
		}
	}
}
