package storage

import (
	"fmt"
	"strings"
)

// CheckPath refuses a path that is not a canonical key: empty elements, a
// leading or trailing slash, "." or "..", or a NUL. The registry builds
// only valid paths; backends check anyway, so that no bug can make a
// filesystem backend leave its root.
func CheckPath(p string) error {
	if p == "" {
		return fmt.Errorf("storage path is empty")
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == "" || elem == "." || elem == ".." || strings.ContainsRune(elem, 0) {
			return fmt.Errorf("storage path %q is not canonical", p)
		}
	}
	return nil
}

// CheckDir is CheckPath for a directory argument, where "" (the whole
// store) is allowed.
func CheckDir(dir string) error {
	if dir == "" {
		return nil
	}
	return CheckPath(dir)
}

// Join joins a directory (possibly "") and a relative path.
func Join(dir, rel string) string {
	if dir == "" {
		return rel
	}
	return dir + "/" + rel
}
