// Package ocierr defines the one error type octoserve returns to clients: an
// OCI distribution-spec error code paired with its HTTP status. Everything
// below the HTTP layer returns *Error for failures a client caused, and the
// HTTP layer renders it in one place (Write).
package ocierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Code is an error code from the distribution spec's error table.
type Code string

// The spec's codes, plus TOOMANYREQUESTS and UNAVAILABLE that clients know.
const (
	BlobUnknown         Code = "BLOB_UNKNOWN"
	BlobUploadInvalid   Code = "BLOB_UPLOAD_INVALID"
	BlobUploadUnknown   Code = "BLOB_UPLOAD_UNKNOWN"
	DigestInvalid       Code = "DIGEST_INVALID"
	ManifestBlobUnknown Code = "MANIFEST_BLOB_UNKNOWN"
	ManifestInvalid     Code = "MANIFEST_INVALID"
	ManifestUnknown     Code = "MANIFEST_UNKNOWN"
	NameInvalid         Code = "NAME_INVALID"
	NameUnknown         Code = "NAME_UNKNOWN"
	SizeInvalid         Code = "SIZE_INVALID"
	TagInvalid          Code = "TAG_INVALID"
	Unauthorized        Code = "UNAUTHORIZED"
	Denied              Code = "DENIED"
	Unsupported         Code = "UNSUPPORTED"
	TooManyRequests     Code = "TOOMANYREQUESTS"
	Unknown             Code = "UNKNOWN"
)

// Error is a client-visible failure: code, HTTP status, message and detail.
type Error struct {
	Code    Code
	Status  int
	Message string
	Detail  any
}

func (e *Error) Error() string {
	if e.Detail != nil {
		return fmt.Sprintf("%s: %s (%v)", e.Code, e.Message, e.Detail)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// New returns an error with code, status and a formatted message.
func New(code Code, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns a copy of e carrying detail.
func (e *Error) WithDetail(detail any) *Error {
	c := *e
	c.Detail = detail
	return &c
}

// As extracts an *Error from err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

type wireError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// Write renders err as the spec's JSON error body. Errors that are not *Error
// are internal: the client gets a 500 UNKNOWN without internal detail.
func Write(w http.ResponseWriter, err error) {
	e, ok := As(err)
	if !ok {
		e = New(Unknown, http.StatusInternalServerError, "internal server error")
	}
	body, _ := json.Marshal(struct {
		Errors []wireError `json:"errors"`
	}{[]wireError{{Code: e.Code, Message: e.Message, Detail: e.Detail}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Del("Docker-Content-Digest")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
