//go:build !octoserve_sendfile

package api

// sendfileBlobs: see blobWriteSize for why blobs are not sent with
// sendfile(2) by default.
const sendfileBlobs = false
