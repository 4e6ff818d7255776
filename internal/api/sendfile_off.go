//go:build !octoserve_sendfile

package api

// sendfileBlobs: blobWriter chooses between sendfile(2) and plain
// writes (see blobcopy.go).
const sendfileBlobs = false
