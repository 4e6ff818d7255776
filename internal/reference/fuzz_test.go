package reference

import (
	"path"
	"strings"
	"testing"
)

// Run with: go test -fuzz=FuzzValidateName ./internal/reference (see make fuzz).

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{
		"library/alpine", "a", "a/b/c", "a.b_c__d---e/f", "team-a/app",
		"", "..", "../etc", "a/../b", "/a", "a/", "a//b", "A", "a\x00b", "a%2fb",
		"a/_uploads", "a__b", "a___b", "a..b", "-a", "a-", strings.Repeat("a", 256),
		strings.Repeat("a/", 127) + "a", "a\\b", "a b", "ü",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		if len(name) == 0 || len(name) > MaxNameLength {
			t.Fatalf("accepted length %d", len(name))
		}
		// A valid name is a canonical relative path that cannot leave
		// the directory it is joined to, or address the layout's own
		// underscore directories.
		if path.Clean("/"+name) != "/"+name || strings.Contains(name, "..") {
			t.Fatalf("accepted non-canonical %q", name)
		}
		for _, comp := range strings.Split(name, "/") {
			if comp == "" || comp[0] == '_' || comp[0] == '.' || comp[0] == '-' {
				t.Fatalf("accepted component %q in %q", comp, name)
			}
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '/' || c == '.' || c == '_' || c == '-') {
				t.Fatalf("accepted byte %q in %q", c, name)
			}
		}
	})
}

func FuzzValidTag(f *testing.F) {
	for _, s := range []string{"latest", "v1.0.0", "_x", "A-b_c.d", strings.Repeat("t", 128),
		strings.Repeat("t", 129), "", ".", "..", "-x", ".x", "a/b", "a:b", "a\x00", "a\n", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		if !ValidTag(tag) {
			return
		}
		if len(tag) == 0 || len(tag) > 128 {
			t.Fatalf("accepted length %d", len(tag))
		}
		if tag[0] == '.' || tag[0] == '-' || strings.ContainsAny(tag, "/:\\\x00") {
			t.Fatalf("accepted %q, unsafe as a file name or ambiguous with a digest", tag)
		}
		for i := 0; i < len(tag); i++ {
			if tag[i] >= 0x80 || tag[i] < 0x21 {
				t.Fatalf("accepted byte %q", tag[i])
			}
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{
		"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128),
		"sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("a", 63), "sha256:", ":",
		"md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:../../" + strings.Repeat("a", 58),
		"sha256:" + strings.Repeat("a", 63) + "\x00", "sha256+b64:abc", "", "sha256",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			if d != "" {
				t.Fatalf("error with a digest %q", d)
			}
			return
		}
		if d.String() != s || d.Algorithm()+":"+d.Hex() != s {
			t.Fatalf("round trip %q -> %q", s, d)
		}
		n, ok := hexLen[d.Algorithm()]
		if !ok || len(d.Hex()) != n {
			t.Fatalf("accepted %q", s)
		}
		if strings.Trim(d.Hex(), "0123456789abcdef") != "" {
			t.Fatalf("accepted non-hex %q", s)
		}
		// Parsing is idempotent and agrees with hashing's output format.
		if d2, err := ParseDigest(string(FromBytes(d.Algorithm(), []byte(s)))); err != nil || d2.Algorithm() != d.Algorithm() {
			t.Fatalf("FromBytes output rejected: %v", err)
		}
	})
}
