package registry

import (
	"bytes"
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// checkManifestJSON refuses what encoding/json reads silently but other
// parsers read differently, so that the registry validates the manifest
// its clients will see: a key that appears twice in one object (Go keeps
// the last, some parsers the first or fail), at any depth, and data after
// the document. body must already have decoded as JSON (so its first
// value is well formed) and be valid UTF-8 (so unescaped key bytes are the
// key).
//
// Where encoding/json fills a struct — the manifest itself and its
// descriptors — keys match fields case-insensitively, so two keys that
// differ only in case ("mediaType", "MediaType") are duplicates there too.
// Elsewhere (annotations, platform, unknown fields) keys are compared
// exactly.
func checkManifestJSON(body []byte) error {
	c := keyChecker{b: body}
	c.space()
	if err := c.value(shapeManifest); err != nil {
		return err
	}
	c.space()
	if c.i != len(c.b) {
		return errManifestInvalid("trailing data after the JSON document")
	}
	return nil
}

// keyShape is how encoding/json reads a value at some place of a manifest.
type keyShape uint8

const (
	shapeOther       keyShape = iota
	shapeManifest             // the document: manifestFields
	shapeDescriptor           // config, subject, an element of layers or manifests
	shapeDescriptors          // layers, manifests
)

// maxKeyDepth is encoding/json's nesting limit; body decoded, so it holds.
const maxKeyDepth = 10000

type keyChecker struct {
	b     []byte
	i     int
	depth int
}

func errJSONSyntax() error { return errManifestInvalid("not valid JSON") }

func (c *keyChecker) space() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\r', '\n':
			c.i++
		default:
			return
		}
	}
}

func (c *keyChecker) value(shape keyShape) error {
	if c.i >= len(c.b) {
		return errJSONSyntax()
	}
	switch c.b[c.i] {
	case '{':
		return c.object(shape)
	case '[':
		return c.array(shape)
	case '"':
		_, _, err := c.str()
		return err
	}
	// A number or literal, well formed since body decoded.
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return nil
		}
		c.i++
	}
	return nil
}

func (c *keyChecker) array(shape keyShape) error {
	if c.depth++; c.depth > maxKeyDepth {
		return errManifestInvalid("JSON nested too deeply")
	}
	elem := shapeOther
	if shape == shapeDescriptors {
		elem = shapeDescriptor
	}
	c.i++ // [
	c.space()
	if c.i < len(c.b) && c.b[c.i] == ']' {
		c.i++
		c.depth--
		return nil
	}
	for {
		c.space()
		if err := c.value(elem); err != nil {
			return err
		}
		c.space()
		if c.i >= len(c.b) {
			return errJSONSyntax()
		}
		c.i++
		switch c.b[c.i-1] {
		case ',':
			continue
		case ']':
			c.depth--
			return nil
		}
		return errJSONSyntax()
	}
}

func (c *keyChecker) object(shape keyShape) error {
	if c.depth++; c.depth > maxKeyDepth {
		return errManifestInvalid("JSON nested too deeply")
	}
	keys := keySet{fold: shape == shapeManifest || shape == shapeDescriptor}
	c.i++ // {
	c.space()
	if c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		c.depth--
		return nil
	}
	for {
		c.space()
		key, escaped, err := c.str()
		if err != nil {
			return err
		}
		if escaped {
			var s string
			if err := json.Unmarshal(c.b[c.i-len(key)-2:c.i], &s); err != nil {
				return errJSONSyntax()
			}
			key = []byte(s)
		}
		if !keys.add(key) {
			return errManifestInvalid("duplicate key %q in a JSON object", key)
		}
		c.space()
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			return errJSONSyntax()
		}
		c.i++
		c.space()
		if err := c.value(childShape(shape, key)); err != nil {
			return err
		}
		c.space()
		if c.i >= len(c.b) {
			return errJSONSyntax()
		}
		c.i++
		switch c.b[c.i-1] {
		case ',':
			continue
		case '}':
			c.depth--
			return nil
		}
		return errJSONSyntax()
	}
}

// childShape is the shape of the value under key in an object of shape,
// matched as encoding/json matches struct fields.
func childShape(shape keyShape, key []byte) keyShape {
	if shape != shapeManifest {
		return shapeOther
	}
	switch {
	case bytes.EqualFold(key, []byte("config")), bytes.EqualFold(key, []byte("subject")):
		return shapeDescriptor
	case bytes.EqualFold(key, []byte("layers")), bytes.EqualFold(key, []byte("manifests")):
		return shapeDescriptors
	}
	return shapeOther
}

// str reads the string at c.i and returns its raw content (between the
// quotes) and whether it holds escapes.
func (c *keyChecker) str() ([]byte, bool, error) {
	if c.i >= len(c.b) || c.b[c.i] != '"' {
		return nil, false, errJSONSyntax()
	}
	start := c.i + 1
	escaped := false
	for i := start; i < len(c.b); i++ {
		switch c.b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			c.i = i + 1
			return c.b[start:i], escaped, nil
		}
	}
	return nil, false, errJSONSyntax()
}

// keySet holds the keys of one object: a few in an array (no allocation
// for the small objects manifests are made of), many in a map.
type keySet struct {
	fold bool
	n    int
	few  [fewKeys][]byte
	many map[string]struct{}
}

const fewKeys = 8

// add records k and reports whether it was new.
func (s *keySet) add(k []byte) bool {
	if s.many == nil {
		for _, o := range s.few[:s.n] {
			if bytes.Equal(o, k) || (s.fold && bytes.EqualFold(o, k)) {
				return false
			}
		}
		if s.n < fewKeys {
			s.few[s.n] = k
			s.n++
			return true
		}
		s.many = make(map[string]struct{}, 2*fewKeys)
		for _, o := range s.few {
			s.many[s.norm(o)] = struct{}{}
		}
	}
	n := s.norm(k)
	if _, dup := s.many[n]; dup {
		return false
	}
	s.many[n] = struct{}{}
	return true
}

func (s *keySet) norm(k []byte) string {
	if s.fold {
		return foldKey(k)
	}
	return string(k)
}

// foldKey folds k as encoding/json does to match struct fields, so that
// foldKey(x) == foldKey(y) exactly when bytes.EqualFold(x, y).
func foldKey(k []byte) string {
	out := make([]byte, 0, len(k))
	for i := 0; i < len(k); {
		if c := k[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(k[i:])
		out = utf8.AppendRune(out, unicode.ToUpper(unicode.ToLower(r)))
		i += n
	}
	return string(out)
}
