package s3

import (
	"context"

	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
)

// RedirectURL implements storage.Redirector: a presigned GET of the
// object, valid for Config.RedirectExpiry, or "" when Config.Redirect is
// off. It sends no request, so a missing object shows as the URL's 404.
func (d *Driver) RedirectURL(ctx context.Context, p string) (string, error) {
	if d.redirect == 0 {
		return "", nil
	}
	key, err := d.key(p)
	if err != nil {
		return "", err
	}
	req, err := d.presign.PresignGetObject(ctx, &s3sdk.GetObjectInput{Bucket: &d.bucket, Key: &key},
		s3sdk.WithPresignExpires(d.redirect))
	if err != nil {
		return "", d.wrap("presign", p, err)
	}
	return req.URL, nil
}
