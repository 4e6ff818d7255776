// Package securitytest holds octoserve's end-to-end security tests: the
// auth matrix (every caller, every method, every endpoint), malformed and
// hostile requests, body limits and TLS. They drive the real API over
// httptest with the filesystem driver on a temporary directory, and check
// the data directory is unchanged after every refused request. The package
// has no code of its own.
package securitytest
