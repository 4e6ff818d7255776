//go:build octoserve_sendfile

package api

// sendfileBlobs: built with -tags octoserve_sendfile, blobs go to the
// kernel with sendfile(2), never copied (see blobcopy.go).
const sendfileBlobs = true
