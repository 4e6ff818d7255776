package securitytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/registry"
)

// tree lists every file and directory under root with the files' sizes
// and digests, sorted, so that two listings are equal exactly when
// nothing in the data directory changed.
func tree(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			lines = append(lines, rel+"/")
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		lines = append(lines, fmt.Sprintf("%s %d %x", rel, len(b), sum[:8]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// diffTrees describes how two tree listings differ.
func diffTrees(before, after string) string {
	b := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		b[l] = true
	}
	a := map[string]bool{}
	var out []string
	for _, l := range strings.Split(after, "\n") {
		a[l] = true
		if !b[l] {
			out = append(out, "+ "+l)
		}
	}
	for _, l := range strings.Split(before, "\n") {
		if !a[l] {
			out = append(out, "- "+l)
		}
	}
	return strings.Join(out, "\n")
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

type client struct {
	t    testing.TB
	base string
	user string
	pass string
	hc   *http.Client
}

// do sends a request and returns the status, headers and body.
func (c *client) do(method, path string, body []byte, h map[string]string) (int, http.Header, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	hc := c.hc
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// errorCode returns the first OCI error code in body, or "".
func errorCode(body []byte) string {
	var eb struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(body, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

// content is what seed pushes into a repository.
type content struct {
	config, layer     []byte
	configD, layerD   string
	manifest          []byte
	manifestD, upload string
}

// seed pushes a config, a layer and a manifest tagged v1 to repo through
// c (which must be allowed to), and opens an upload session.
func seed(t testing.TB, c *client, repo string) content {
	t.Helper()
	x := content{config: []byte(`{"architecture":"amd64","os":"linux","repo":"` + repo + `"}`), layer: []byte("layer of " + repo)}
	x.configD, x.layerD = digestOf(x.config), digestOf(x.layer)
	for _, b := range [][]byte{x.config, x.layer} {
		if st, _, body := c.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(b), b, nil); st != 201 {
			t.Fatalf("seeding %s: %d %s", repo, st, body)
		}
	}
	x.manifest = manifestOf(x.configD, len(x.config), x.layerD, len(x.layer))
	x.manifestD = digestOf(x.manifest)
	if st, _, body := c.do("PUT", "/v2/"+repo+"/manifests/v1", x.manifest, map[string]string{"Content-Type": registry.MediaTypeOCIManifest}); st != 201 {
		t.Fatalf("seeding %s: %d %s", repo, st, body)
	}
	st, h, body := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if st != 202 {
		t.Fatalf("seeding %s: %d %s", repo, st, body)
	}
	x.upload = h.Get("Docker-Upload-UUID")
	return x
}

func manifestOf(configD string, configN int, layerD string, layerN int) []byte {
	b, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     registry.MediaTypeOCIManifest,
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configD, "size": configN},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerD, "size": layerN}},
	})
	return b
}
