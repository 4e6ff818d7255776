package reference

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	cases := map[string]bool{
		"a":                      true,
		"library/ubuntu":         true,
		"a.b_c__d-e--f/g":        true,
		"":                       false,
		"A":                      false,
		"a/../b":                 false,
		"../a":                   false,
		"/a":                     false,
		"a/":                     false,
		"a//b":                   false,
		"a_":                     false,
		"a___b":                  false,
		"_a":                     false,
		"a\x00b":                 false,
		strings.Repeat("a", 256): false,
		strings.Repeat("a", 255): true,
	}
	for name, ok := range cases {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestValidTag(t *testing.T) {
	cases := map[string]bool{
		"latest": true, "v1.0-rc_1": true, "_x": true, "A": true,
		"": false, ".hidden": false, "-x": false, "a/b": false, "a:b": false,
		strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
	}
	for tag, ok := range cases {
		if ValidTag(tag) != ok {
			t.Errorf("ValidTag(%q) != %v", tag, ok)
		}
	}
}

func TestParseDigest(t *testing.T) {
	good := []string{"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128)}
	bad := []string{"", "sha256", "sha256:", "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("a", 63),
		"md5:d41d8cd98f00b204e9800998ecf8427e", "sha512:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("g", 64)}
	for _, s := range good {
		if _, err := ParseDigest(s); err != nil {
			t.Errorf("ParseDigest(%q): %v", s, err)
		}
	}
	for _, s := range bad {
		if _, err := ParseDigest(s); err == nil {
			t.Errorf("ParseDigest(%q) accepted", s)
		}
	}
	d := FromBytes("sha256", []byte{})
	if d != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" || d.Algorithm() != "sha256" || len(d.Hex()) != 64 {
		t.Fatalf("FromBytes empty = %s", d)
	}
}
