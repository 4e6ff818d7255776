package s3

import (
	"errors"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/octoserve/octoserve/internal/storage"
)

// apiError is an error as the SDK returns it for an answer with status
// and (when code is set) an S3 error body.
func apiError(status int, code string) error {
	var inner error = errors.New("no body")
	if code != "" {
		inner = &smithy.GenericAPIError{Code: code, Message: "from the service"}
	}
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      inner,
	}}
}

// The codes of other services than the one the tests run on (the
// versitygw ones are also exercised for real by TestNoSpace).
func TestErrorMapping(t *testing.T) {
	d := &Driver{where: "http://s3/bucket"}
	tests := []struct {
		name string
		err  error
		want error // nil: neither ErrNotFound nor ErrNoSpace
	}{
		{"NoSuchKey", apiError(404, "NoSuchKey"), storage.ErrNotFound},
		{"HEAD 404 without a body", apiError(404, ""), storage.ErrNotFound},
		{"missing bucket", apiError(404, "NoSuchBucket"), nil},
		{"missing upload", apiError(404, "NoSuchUpload"), nil},
		{"versitygw and Ceph quota", apiError(403, "QuotaExceeded"), storage.ErrNoSpace},
		{"versitygw ENOSPC", apiError(507, "InsufficientStorage"), storage.ErrNoSpace},
		{"MinIO full", apiError(507, "XMinioStorageFull"), storage.ErrNoSpace},
		{"MinIO bucket quota", apiError(400, "XMinioAdminBucketQuotaExceeded"), storage.ErrNoSpace},
		{"507 of another service", apiError(507, ""), storage.ErrNoSpace},
		{"access denied", apiError(403, "AccessDenied"), nil},
		{"server error", apiError(500, "InternalError"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := d.wrap("get", "a/b", tc.err)
			for _, e := range []error{storage.ErrNotFound, storage.ErrNoSpace} {
				if errors.Is(err, e) != (tc.want == e) {
					t.Fatalf("%v: errors.Is(%v) = %v", err, e, !(tc.want == e))
				}
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("%v does not wrap the SDK's error", err)
			}
		})
	}
	if !isPrecondition(apiError(412, "PreconditionFailed")) || !isPrecondition(apiError(409, "ConditionalRequestConflict")) {
		t.Fatal("412 and 409 are not read as failed conditions")
	}
	if isPrecondition(apiError(409, "BucketNotEmpty")) {
		t.Fatal("any 409 read as a failed condition")
	}
}
