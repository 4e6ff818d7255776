package proxy

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/storage"
)

// statusError is an upstream's answer that is not the content asked for.
type statusError struct {
	status int
	what   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s answered %d %s", e.what, e.status, http.StatusText(e.status))
}

// notFound reports whether err is the upstream saying the content does
// not exist: an answer, not a failure.
func notFound(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == http.StatusNotFound
}

// upstreamFailed reports whether err means the upstream could not be
// asked: no answer, a timeout, 429, 5xx, refused credentials, or content
// that does not verify. A cached copy is served instead (stale beats
// broken); only "not found" is believed.
func upstreamFailed(err error) bool { return err != nil && !notFound(err) }

// clientError turns a failure to get content from upstream u into the OCI
// error the client gets, when there is no cached copy to serve instead.
func clientError(u *upstream, kind Kind, ref string, err error) error {
	code := ocierr.ManifestUnknown
	if kind == KindBlob {
		code = ocierr.BlobUnknown
	}
	var se *statusError
	if errors.As(err, &se) {
		switch se.status {
		case http.StatusNotFound:
			return ocierr.New(code, http.StatusNotFound, "%s unknown to the registry and to its upstream %s", kind, u.cfg.URL).
				WithDetail(map[string]string{"reference": ref})
		case http.StatusUnauthorized, http.StatusForbidden:
			return ocierr.New(code, http.StatusNotFound,
				"upstream %s refused access (%d): the repository does not exist there, or octoserve's credentials for it may not pull it", u.cfg.URL, se.status).
				WithDetail(map[string]string{"reference": ref})
		case http.StatusTooManyRequests:
			return ocierr.New(ocierr.TooManyRequests, http.StatusTooManyRequests,
				"upstream %s answered 429 Too Many Requests and nothing is cached for %s", u.cfg.URL, ref)
		}
	}
	if e, ok := ocierr.As(err); ok && e.Status >= 500 {
		return e
	}
	if errors.Is(err, storage.ErrNoSpace) {
		return err // the API answers 507
	}
	return ocierr.New(ocierr.Unknown, http.StatusBadGateway, "fetching %s %s from upstream %s failed: %v", kind, ref, u.cfg.URL, err)
}
