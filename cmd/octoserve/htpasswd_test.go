package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/octoserve/octoserve/internal/auth"
)

func TestHtpasswd(t *testing.T) {
	var out bytes.Buffer
	if err := htpasswd([]string{"--cost", "4", "alice"}, strings.NewReader("s3cret\r\nignored\n"), &out); err != nil {
		t.Fatal(err)
	}
	users, err := auth.ParseHtpasswd(&out, "out")
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword(users["alice"], []byte("s3cret")) != nil {
		t.Fatalf("hash does not verify: %q", users["alice"])
	}
	for _, tc := range []struct {
		args  []string
		stdin string
	}{
		{[]string{"alice"}, ""},
		{[]string{"alice"}, "\n"},
		{[]string{"a:b"}, "pw\n"},
		{[]string{}, "pw\n"},
		{[]string{"a", "b"}, "pw\n"},
		{[]string{"--cost", "99", "a"}, "pw\n"},
		{[]string{"a"}, strings.Repeat("x", 73) + "\n"}, // bcrypt would check 72 bytes of it
		{[]string{"a"}, "pw\x00pw\n"},                   // bcrypt takes a NUL for the end
	} {
		if err := htpasswd(tc.args, strings.NewReader(tc.stdin), &out); err == nil {
			t.Errorf("%v with %q accepted", tc.args, tc.stdin)
		}
	}
}
