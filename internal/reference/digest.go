// Package reference parses and validates the identifiers a client sends:
// repository names, tags and digests.
package reference

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// Digest is a validated content digest such as "sha256:<64 hex>".
type Digest string

// Algorithms octoserve accepts, with their hex lengths.
var hexLen = map[string]int{"sha256": 64, "sha512": 128}

// ParseDigest validates s as "<algorithm>:<lowercase hex>" for a supported
// algorithm.
func ParseDigest(s string) (Digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("digest %q: missing algorithm", s)
	}
	n, known := hexLen[alg]
	if !known {
		return "", fmt.Errorf("digest %q: unsupported algorithm %q", s, alg)
	}
	if len(enc) != n {
		return "", fmt.Errorf("digest %q: want %d hex characters, have %d", s, n, len(enc))
	}
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("digest %q: invalid hex character %q", s, c)
		}
	}
	return Digest(s), nil
}

// Algorithm returns the part before the colon.
func (d Digest) Algorithm() string { alg, _, _ := strings.Cut(string(d), ":"); return alg }

// Hex returns the part after the colon.
func (d Digest) Hex() string { _, h, _ := strings.Cut(string(d), ":"); return h }

func (d Digest) String() string { return string(d) }

// NewHash returns a hash for algorithm, which must be supported.
func NewHash(algorithm string) hash.Hash {
	if algorithm == "sha512" {
		return sha512.New()
	}
	return sha256.New()
}

// FromHash formats the sum of h as a digest of algorithm.
func FromHash(algorithm string, h hash.Hash) Digest {
	return Digest(algorithm + ":" + hex.EncodeToString(h.Sum(nil)))
}

// FromBytes digests b with algorithm.
func FromBytes(algorithm string, b []byte) Digest {
	h := NewHash(algorithm)
	h.Write(b)
	return FromHash(algorithm, h)
}
