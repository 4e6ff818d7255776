//go:build soak

package soak

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The legitimate clients run until ctx ends, finishing the operation in
// hand (their requests are not cancelled: a cut request would be an error
// of the test, not of the server). Every failure is a legitimate error.

// craneWorker pushes images with crane (one new layer each, as alice),
// pulls them back through `crane export` and checks the layer's file, and
// lists the tags.
func craneWorker(ctx context.Context, t *testing.T, cfg config, w int, legit *tally) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"), "NO_PROXY=*", "no_proxy=*")
	crane := func(stdout io.Writer, args ...string) error {
		cmd := exec.Command(cfg.crane, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = stdout, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("crane %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
	if err := crane(io.Discard, "auth", "login", cfg.addr, "-u", "alice", "-p", cfg.alicePW); err != nil {
		legit.fail("%v", err)
		return
	}
	repo := fmt.Sprintf("%s/legit/crane-%d", cfg.addr, w)
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("soak/%d-%d.txt", w, i)
		content := hex.EncodeToString(randomBytes(64<<10 + rand.IntN(512<<10)))
		layer := filepath.Join(dir, "layer.tar")
		if err := writeTar(layer, name, content); err != nil {
			legit.fail("%v", err)
			return
		}
		ref := fmt.Sprintf("%s:t%d", repo, i)
		if err := crane(io.Discard, "append", "--insecure", "-f", layer, "-t", ref); err != nil {
			legit.fail("%v", err)
			continue
		}
		var out bytes.Buffer
		if err := crane(&out, "export", "--insecure", ref, "-"); err != nil {
			legit.fail("%v", err)
			continue
		}
		if got, err := fileInTar(out.Bytes(), name); err != nil || got != content {
			legit.fail("crane export %s: file %s: %d bytes, want %d (%v)", ref, name, len(got), len(content), err)
			continue
		}
		out.Reset()
		if err := crane(&out, "ls", "--insecure", repo); err != nil || !strings.Contains(out.String(), fmt.Sprintf("t%d\n", i)) {
			legit.fail("crane ls %s: %q %v", repo, out.String(), err)
			continue
		}
		legit.add("crane push+pull")
	}
}

func writeTar(path, name, content string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, content); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func fileInTar(b []byte, name string) (string, error) {
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("%s not in the export: %w", name, err)
		}
		if strings.TrimPrefix(h.Name, "/") == name {
			got, err := io.ReadAll(tr)
			return string(got), err
		}
	}
}

// goClientWorker pushes an image (blobs chunked and monolithic) and a
// referrer to it as alice, pulls and compares them, lists tags and
// referrers, and pushes to a public repository that it then pulls
// anonymously.
func goClientWorker(ctx context.Context, cfg config, legit *tally) {
	alice := newClient(cfg, legitAddr, "alice", cfg.alicePW, 4)
	anon := newClient(cfg, legitAddr, "", "", 2)
	for i := 0; ctx.Err() == nil; i++ {
		if err := goClientRound(alice, anon, i); err != nil {
			legit.fail("go client round %d: %v", i, err)
			continue
		}
		legit.add("go client round")
	}
}

func goClientRound(alice, anon *ociClient, i int) error {
	ctx := context.Background()
	for _, repo := range []string{"legit/go", "public/go"} {
		cfgBlob := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","round":%d}`, i))
		layer := randomBytes(32<<10 + rand.IntN(256<<10))
		cd, err := alice.pushBlob(ctx, repo, cfgBlob)
		if err != nil {
			return err
		}
		ld, err := alice.pushBlob(ctx, repo, layer)
		if err != nil {
			return err
		}
		manifest, _ := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfgBlob)},
			"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layer)}},
		})
		tag := fmt.Sprintf("r%d", i)
		mt := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
		if _, _, err := alice.expect(ctx, 201, "PUT", "/v2/"+repo+"/manifests/"+tag, manifest, mt); err != nil {
			return err
		}
		puller := alice
		if strings.HasPrefix(repo, "public/") {
			puller = anon
		}
		if _, b, err := puller.expect(ctx, 200, "GET", "/v2/"+repo+"/manifests/"+tag, nil, map[string]string{"Accept": mt["Content-Type"]}); err != nil {
			return err
		} else if !bytes.Equal(b, manifest) {
			return fmt.Errorf("manifest %s:%s differs from what was pushed", repo, tag)
		}
		if _, b, err := puller.expect(ctx, 200, "GET", "/v2/"+repo+"/blobs/"+ld, nil, nil); err != nil {
			return err
		} else if !bytes.Equal(b, layer) {
			return fmt.Errorf("blob %s differs from what was pushed", ld)
		}
		if _, b, err := puller.expect(ctx, 200, "GET", "/v2/"+repo+"/tags/list", nil, nil); err != nil {
			return err
		} else if !strings.Contains(string(b), `"`+tag+`"`) {
			return fmt.Errorf("tags of %s: %s lacks %s", repo, b, tag)
		}
		if repo == "legit/go" {
			if err := referrerRound(ctx, alice, repo, digestOf(manifest), len(manifest), cd, len(cfgBlob), i); err != nil {
				return err
			}
		}
	}
	return nil
}

// referrerRound pushes a signature-like artifact for subject and finds it
// in the subject's referrers, following Link headers.
func referrerRound(ctx context.Context, c *ociClient, repo, subject string, subjectSize int, cd string, cdSize, i int) error {
	art, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"artifactType":  "application/vnd.example.soak",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cdSize},
		"layers":        []any{},
		"subject":       map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": subjectSize},
		"annotations":   map[string]string{"round": fmt.Sprint(i)},
	})
	ad := digestOf(art)
	resp, _, err := c.expect(ctx, 201, "PUT", "/v2/"+repo+"/manifests/"+ad, art, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if err != nil {
		return err
	}
	if resp.Header.Get("OCI-Subject") != subject {
		return fmt.Errorf("OCI-Subject %q, want %s", resp.Header.Get("OCI-Subject"), subject)
	}
	for next := "/v2/" + repo + "/referrers/" + subject + "?artifactType=application/vnd.example.soak"; next != ""; {
		resp, b, err := c.expect(ctx, 200, "GET", next, nil, nil)
		if err != nil {
			return err
		}
		var idx struct {
			Manifests []struct {
				Digest      string
				Annotations map[string]string
			}
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Errorf("referrers of %s: %v", subject, err)
		}
		for _, m := range idx.Manifests {
			if m.Digest == ad && m.Annotations["round"] == fmt.Sprint(i) {
				return nil
			}
		}
		next = ""
		if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			next = m[1]
		}
	}
	return fmt.Errorf("referrer %s of %s not listed", ad, subject)
}
