package auth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// LoadHtpasswd reads an htpasswd file of bcrypt entries.
func LoadHtpasswd(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading htpasswd: %w", err)
	}
	defer f.Close()
	return ParseHtpasswd(f, path)
}

// ParseHtpasswd reads "user:hash" lines as written by `htpasswd -B`. Blank
// lines and lines starting with '#' are skipped. Only bcrypt hashes ($2y$,
// $2a$, $2b$) are accepted: any other hash type (MD5 $apr1$, SHA1 {SHA},
// crypt, plain text) is an error naming the file, line and user, so a
// weak or unverifiable entry stops the server at startup instead of
// silently locking the user out.
func ParseHtpasswd(r io.Reader, source string) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%s:%d: want user:bcrypt-hash", source, line)
		}
		if !isBcrypt(hash) {
			return nil, fmt.Errorf("%s:%d: user %q: unsupported password hash %s; only bcrypt is accepted (create entries with `htpasswd -B`)",
				source, line, user, hashKind(hash))
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: malformed bcrypt hash: %v", source, line, user, err)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q is listed twice", source, line, user)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", source, err)
	}
	return users, nil
}

func isBcrypt(hash string) bool {
	for _, p := range []string{"$2y$", "$2a$", "$2b$"} {
		if strings.HasPrefix(hash, p) {
			return true
		}
	}
	return false
}

// hashKind names a non-bcrypt hash for the error message, never echoing it.
func hashKind(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$apr1$"):
		return "($apr1$, Apache MD5)"
	case strings.HasPrefix(hash, "{SHA}"):
		return "({SHA}, SHA-1)"
	case strings.HasPrefix(hash, "$1$"):
		return "($1$, MD5-crypt)"
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return "(SHA-crypt)"
	case strings.HasPrefix(hash, "$2"):
		return "(unknown bcrypt variant)"
	case hash == "":
		return "(empty)"
	default:
		return "(crypt or plain text)"
	}
}
