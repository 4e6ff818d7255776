package api

import (
	"errors"
	"io"
	"net/http"
	"os"

	"github.com/octoserve/octoserve/internal/ocierr"
)

// requestBody is the one place where a failure to read a request body is
// classified. Whatever the reason — a body shorter than its
// Content-Length, broken chunked encoding, a connection dropped, a body
// that stopped arriving (the server's body timeout) — it is the client's
// doing: the read fails with a *bodyError carrying the route's OCI error
// (400, or 408 for a timeout), which every layer passes on as it passes
// any *ocierr.Error, instead of a 500 and an ERROR log line.
type requestBody struct {
	io.ReadCloser
	code ocierr.Code
}

// wrapBody installs requestBody on r for a route of kind.
func wrapBody(r *http.Request, kind Kind) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	code := ocierr.BlobUploadInvalid
	if kind == KindManifest {
		code = ocierr.ManifestInvalid
	}
	r.Body = &requestBody{ReadCloser: r.Body, code: code}
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	if _, ok := err.(*bodyError); ok {
		return n, err
	}
	oci := ocierr.New(b.code, http.StatusBadRequest, "the request body ended before its announced length or was malformed")
	if errors.Is(err, os.ErrDeadlineExceeded) {
		oci = ocierr.New(b.code, http.StatusRequestTimeout, "the request body stopped arriving")
	}
	return n, &bodyError{oci: oci, cause: err}
}

// bodyError is a failed read of a request body: the client's error oci,
// and what the connection reported.
type bodyError struct {
	oci   *ocierr.Error
	cause error
}

func (e *bodyError) Error() string { return e.oci.Error() + ": " + e.cause.Error() }

// Unwrap exposes both: ocierr.As finds the client's error, errors.Is the
// cause (io.ErrUnexpectedEOF, os.ErrDeadlineExceeded).
func (e *bodyError) Unwrap() []error { return []error{e.oci, e.cause} }
