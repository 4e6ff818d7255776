package s3

import (
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/octoserve/octoserve/internal/storage"
)

// noSpaceCodes are the error codes by which services say a write did not
// fit: versitygw (QuotaExceeded for EDQUOT, InsufficientStorage for
// ENOSPC), Ceph RGW (QuotaExceeded), MinIO (XMinioStorageFull and its
// bucket quota). AWS itself has no such error.
var noSpaceCodes = map[string]bool{
	"QuotaExceeded":                  true,
	"InsufficientStorage":            true,
	"XMinioStorageFull":              true,
	"XMinioAdminBucketQuotaExceeded": true,
	"StorageFull":                    true,
}

// errorCode returns the service's error code ("" when there is none, as
// for a transport failure) and HTTP status (0 when there was no answer).
func errorCode(err error) (string, int) {
	code, status := "", 0
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	return code, status
}

// isNotFound reports an answer that the key (or, for a ranged read, the
// object) is not there. A missing bucket is not: that is a configuration
// error, and must not read as "no such object".
func isNotFound(err error) bool {
	code, status := errorCode(err)
	switch code {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket", "NoSuchUpload":
		return false
	}
	return status == http.StatusNotFound
}

// isPrecondition reports a failed If-Match, If-None-Match or
// x-amz-copy-source-if-match, or a conflicting conditional write (409).
func isPrecondition(err error) bool {
	code, status := errorCode(err)
	return code == "PreconditionFailed" || code == "ConditionalRequestConflict" ||
		status == http.StatusPreconditionFailed
}

// wrap gives err the operation and path, and the storage error it means.
func (d *Driver) wrap(op, p string, err error) error {
	if err == nil {
		return nil
	}
	code, status := errorCode(err)
	switch {
	case isNotFound(err):
		return fmt.Errorf("s3 %s %s: %w (%w)", op, p, storage.ErrNotFound, err)
	case noSpaceCodes[code] || status == http.StatusInsufficientStorage:
		return fmt.Errorf("s3 %s %s: %w (%w)", op, p, storage.ErrNoSpace, err)
	}
	return fmt.Errorf("s3 %s %s in %s: %w", op, p, d.where, err)
}
