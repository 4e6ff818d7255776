// Pins the 2026 suite, built with go build (scripts/build-conformance.sh).
// This module holds no Go source: do not run go mod tidy here (it would
// drop the requirement). To change the version:
//   go get github.com/opencontainers/distribution-spec/conformance@VERSION
module github.com/octoserve/octoserve/distribution-spec/conformance-v2

go 1.25.0

require (
	github.com/goccy/go-yaml v1.18.0 // indirect
	github.com/opencontainers/distribution-spec/conformance v0.0.0-20260831232431-97274622c111 // indirect
	github.com/opencontainers/distribution-spec/specs-go v0.0.0-20240926185104-8376368dd8aa // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
