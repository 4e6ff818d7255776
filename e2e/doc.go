// Package e2e holds octoserve's end-to-end tests: real OCI clients (crane,
// oras, regctl, skopeo, podman, buildah, containerd's ctr, helm, cosign)
// driven against a running octoserve.
//
// The tests are behind the "e2e" build tag, so `go test ./...` skips them.
// Run them with `make test-e2e` (scripts/test-e2e.sh), which installs the
// pinned clients into .tools/bin, starts octoserve on a free loopback port
// with a fresh data directory, runs
//
//	go test -tags e2e -v ./e2e
//
// with OCTOSERVE_ADDR set, and stops the server whatever happens. To run
// them against a registry you started yourself:
//
//	OCTOSERVE_ADDR=127.0.0.1:5000 PATH=$PWD/.tools/bin:$PATH go test -tags e2e -v ./e2e
//
// The scenarios with basic auth on start a second octoserve of their own:
// they also need OCTOSERVE_BIN, the binary to start. The podman, buildah
// and containerd scenarios run as root.
//
// Each scenario is one named TestXxx. When one fails, every client command
// it ran, with its output, is kept in test-results/e2e/<TestName>.log (or
// $OCTOSERVE_E2E_RESULTS/<TestName>.log).
package e2e
