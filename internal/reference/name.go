package reference

import (
	"fmt"
	"regexp"
)

// MaxNameLength bounds a repository name (the spec's recommended limit for
// hostname plus name is 255).
const MaxNameLength = 255

var (
	// The spec's name grammar: path components of lowercase alphanumerics
	// joined by '.', '_', '__' or runs of '-', separated by '/'.
	nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ValidateName reports whether name is a valid repository name. The grammar
// admits no "..", no leading '/', no uppercase and no character that could
// escape a storage path.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLength {
		return fmt.Errorf("repository name must be 1 to %d characters", MaxNameLength)
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("repository name %q does not match the spec's grammar", name)
	}
	return nil
}

// ValidTag reports whether tag matches the spec's tag grammar.
func ValidTag(tag string) bool { return tagRE.MatchString(tag) }
