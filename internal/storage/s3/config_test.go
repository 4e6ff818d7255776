package s3

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Bucket: "b"}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // in the error; "" = valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"everything", func(c *Config) {
			*c = Config{Endpoint: "https://s3.example:9000", Region: "eu-west-1", Bucket: "b", Prefix: "reg/one",
				PathStyle: true, AccessKey: "a", SecretKey: "s", PartSize: 16 << 20, Redirect: true, RedirectExpiry: time.Hour}
		}, ""},
		{"no bucket", func(c *Config) { c.Bucket = "" }, "bucket"},
		{"endpoint without scheme", func(c *Config) { c.Endpoint = "s3.example:9000" }, "endpoint"},
		{"endpoint of another scheme", func(c *Config) { c.Endpoint = "ftp://s3.example" }, "endpoint"},
		{"prefix with a leading slash", func(c *Config) { c.Prefix = "/reg" }, "prefix"},
		{"prefix with a trailing slash", func(c *Config) { c.Prefix = "reg/" }, "prefix"},
		{"prefix with ..", func(c *Config) { c.Prefix = "a/../b" }, "prefix"},
		{"access key alone", func(c *Config) { c.AccessKey = "a" }, "secretKey"},
		{"secret key alone", func(c *Config) { c.SecretKey = "s" }, "accessKey"},
		{"part size below 5 MiB", func(c *Config) { c.PartSize = 5<<20 - 1 }, "partSize"},
		{"part size above 5 GiB", func(c *Config) { c.PartSize = 5<<30 + 1 }, "partSize"},
		{"negative expiry", func(c *Config) { c.RedirectExpiry = -time.Second }, "redirectExpiry"},
		{"expiry over 7 days", func(c *Config) { c.RedirectExpiry = 169 * time.Hour }, "redirectExpiry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
			if _, nerr := New(ctx, c); (nerr == nil) != (err == nil) {
				t.Fatalf("New and Validate disagree: %v, %v", nerr, err)
			}
		})
	}
}

func TestCopySourceEncodesKeys(t *testing.T) {
	for key, want := range map[string]string{
		"a/b-c_d.e~f":      "bkt/a/b-c_d.e~f",
		"a b+c%d":          "bkt/a%20b%2Bc%25d",
		"sha256:abc/!x":    "bkt/sha256%3Aabc/%21x",
		"caf\u00e9/\u00e9": "bkt/caf%C3%A9/%C3%A9",
	} {
		if got := copySource("bkt", key); got != want {
			t.Errorf("copySource(%q) = %q, want %q", key, got, want)
		}
	}
}
