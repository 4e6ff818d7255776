// Package crashtest holds octoserve's kill -9 test (issue 6, "Crash and
// disk safety"; issue 2's "survives kill -9 during a push"). It runs the
// real binary named by OCTOSERVE_BIN on a temporary root, pushes many small
// images (chunked, streamed, monolithic and mounted blobs; images, indexes
// and referrers) from several concurrent clients, kills the process with
// SIGKILL at a random moment, restarts it on the same root, and checks
// that every push that got its 201 pulls back byte-identical and that
// nothing partial is visible. After each restart the clients resume the
// upload sessions and re-push the images the kill interrupted, as real
// clients do. Finally `octoserve verify` must find the root consistent.
//
// Without OCTOSERVE_BIN the test is skipped, so plain `go test ./...`
// stays fast; `make test-crash` builds bin/octoserve and runs it, with
// CRASH_ROUNDS rounds (default 20). The package has no code of its own.
package crashtest
