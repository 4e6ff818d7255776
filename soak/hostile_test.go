//go:build soak

package soak

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The hostile clients run until ctx ends. Their own failures (a dial
// refused, a port in use) are counted, not errors; what fails the soak is
// the server mishandling them: a hostile connection neither answered nor
// closed, a wrong password let in, a broken referrers listing.

// pause keeps the attackers from spinning the test machine's CPU on
// requests answered at once; they still far outnumber what the server
// lets through.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// slowBodies opens three times the per-client bound of connections from
// local, each announcing a body it does not send (or trickles, or stops
// sending): anonymous chunks (refused at once), mallory's chunks and
// manifests (cut off after the body timeout) and trickled chunks (kept
// while they move, then cut off). Each connection must be answered and
// closed, or closed on accept past the bound. sessions are mallory's
// upload sessions, one per connection that needs one (requests on one
// session would queue behind its lock).
func slowBodies(ctx context.Context, cfg config, local string, sessions []string, hostile *tally) {
	var wg sync.WaitGroup
	for g := 0; g < 3*cfg.maxConns; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				slowBody(ctx, cfg, local, g%4, sessions[g], hostile)
				pause(ctx, 50*time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// slowSessions opens, as mallory from local, the upload sessions
// slowBodies uses ("" where a connection needs none).
func slowSessions(cfg config, local string) ([]string, error) {
	mallory := newClient(cfg, local, "mallory", cfg.malloryPW, 4)
	sessions := make([]string, 3*cfg.maxConns)
	for g := range sessions {
		if g%4 == 0 {
			continue
		}
		resp, _, err := mallory.expect(context.Background(), 202, "POST", "/v2/hostile/slow/blobs/uploads/", nil, nil)
		if err != nil {
			return nil, err
		}
		sessions[g] = resp.Header.Get("Location")
	}
	return sessions, nil
}

func slowBody(ctx context.Context, cfg config, local string, mode int, session string, hostile *tally) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", cfg.addr)
	if err != nil {
		hostile.add("slow body: dial failed (client side)")
		pause(ctx, 250*time.Millisecond)
		return
	}
	defer c.Close()
	auth := "Authorization: " + basic("mallory", cfg.malloryPW) + "\r\n"
	var head string
	switch mode {
	case 0: // anonymous: refused before the body
		head = "PATCH /v2/hostile/slow/blobs/uploads/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\nHost: r\r\nContent-Length: 100\r\n\r\n"
	case 1: // a chunk that never comes
		head = "PATCH " + session + " HTTP/1.1\r\nHost: r\r\n" + auth + "Content-Length: 100\r\n\r\n"
	case 2: // a manifest that stops after its first bytes
		head = "PUT /v2/hostile/slow/manifests/x HTTP/1.1\r\nHost: r\r\n" + auth +
			"Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 100\r\n\r\n{\"schemaVersion\""
	case 3: // a chunk trickled a byte at a time, then abandoned
		head = "PATCH " + session + " HTTP/1.1\r\nHost: r\r\n" + auth + "Content-Length: 1000\r\n\r\n"
	}
	if _, err := io.WriteString(c, head); err != nil {
		hostile.add("slow body: connection closed on accept (per-client bound)")
		pause(ctx, 250*time.Millisecond)
		return
	}
	wait := 4*cfg.bodyTimeout + 30*time.Second // generous; not a measurement
	if mode == 3 {
		trickleFor := 3 * cfg.bodyTimeout
		wait += trickleFor
		go func() {
			end := time.Now().Add(trickleFor)
			for time.Now().Before(end) && ctx.Err() == nil {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(cfg.bodyTimeout / 4)
			}
		}()
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		hostile.fail("slow body (mode %d) from %s: no answer and not closed within %v", mode, local, wait)
		return
	case err != nil:
		// Closed (or reset) before any answer: the per-client bound.
		hostile.add("slow body: connection closed on accept (per-client bound)")
		pause(ctx, 250*time.Millisecond)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case mode == 0 && resp.StatusCode == 401:
		hostile.add("slow body: refused at once (401), closed")
	case mode == 3 && resp.StatusCode == 408:
		hostile.add("slow body: trickled, then 408")
	case mode != 0 && resp.StatusCode == 408:
		hostile.add("slow body: 408 after the body timeout")
	default:
		hostile.fail("slow body (mode %d) from %s: answered %d", mode, local, resp.StatusCode)
		return
	}
	if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) || err == nil {
		hostile.fail("slow body (mode %d) from %s: connection kept open after %d for a body that never came", mode, local, resp.StatusCode)
	}
}

// loginFlood sends wrong passwords for alice (and for users who do not
// exist) from local, from 16 connections at once, as fast as the answers
// come. Each 401 is a password the server checked; the failed-login
// bucket allows burst of them at once and perMinute more a minute, and
// concurrency must not get more through: at the end, the 401s of this
// address must be within burst + perMinute x the flood's duration (+1 for
// the token refilling as the flood ends). A slower run only widens the
// allowance.
func loginFlood(ctx context.Context, cfg config, local string, hostile *tally) {
	const workers = 16
	c := newClient(cfg, local, "", "", workers)
	start := time.Now()
	var checked atomic.Int64
	defer func() {
		allowed := float64(cfg.loginBurst) + cfg.loginPerMinute*time.Since(start).Minutes() + 1
		if n := checked.Load(); float64(n) > allowed {
			hostile.fail("login flood from %s: %d wrong passwords checked (401) in %v; the failed-login limit allows %.0f",
				local, n, time.Since(start).Round(time.Second), allowed)
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				user := "alice"
				if i%2 == 1 {
					user = fmt.Sprintf("nobody-%d", g)
				}
				resp, _, err := c.do(context.Background(), "GET", "/v2/", nil, map[string]string{"Authorization": basic(user, fmt.Sprintf("guess-%d-%d", g, i))})
				switch {
				case err != nil:
					hostile.add("login flood: request failed (client side)")
					pause(ctx, 250*time.Millisecond)
					continue
				case resp.StatusCode == 401 || resp.StatusCode == 429:
					hostile.add(fmt.Sprintf("login flood: %d", resp.StatusCode))
					if resp.StatusCode == 401 {
						checked.Add(1)
					}
				default:
					hostile.fail("login flood from %s: a wrong password for %s got %d", local, user, resp.StatusCode)
				}
				pause(ctx, 10*time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// hugeReferrers is a subject in a repository anyone may pull with 16
// referrers holding 2 MiB of annotations each. (Before the list was
// paged, one listing of it allocated about 7 times the list, over 200
// MiB, and six at once over a gigabyte.)
type hugeReferrers struct {
	path            string // the subject's referrers
	count           int
	annotationBytes int
}

// pushHugeReferrers pushes them, as mallory from local, from four
// connections at once.
func pushHugeReferrers(cfg config, local string) (*hugeReferrers, error) {
	h := &hugeReferrers{count: 16, annotationBytes: 2 << 20}
	mallory := newClient(cfg, local, "mallory", cfg.malloryPW, 4)
	bg := context.Background()
	repo := "public/huge-referrers"
	cfgBlob := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd, err := mallory.pushBlob(bg, repo, cfgBlob)
	if err != nil {
		return nil, err
	}
	config := map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfgBlob)}
	subject, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": []any{}})
	sd := digestOf(subject)
	h.path = "/v2/" + repo + "/referrers/" + sd
	mt := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
	if _, _, err := mallory.expect(bg, 201, "PUT", "/v2/"+repo+"/manifests/subject", subject, mt); err != nil {
		return nil, err
	}
	big := strings.Repeat("a", h.annotationBytes)
	var pushers sync.WaitGroup
	errc := make(chan error, h.count)
	for p := 0; p < 4; p++ {
		pushers.Add(1)
		go func() {
			defer pushers.Done()
			for i := p; i < h.count; i += 4 {
				m, _ := json.Marshal(map[string]any{
					"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
					"artifactType": "application/vnd.example.huge", "config": config, "layers": []any{},
					"subject":     map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sd, "size": len(subject)},
					"annotations": map[string]string{"n": fmt.Sprint(i), "big": big},
				})
				if _, _, err := mallory.expect(bg, 201, "PUT", "/v2/"+repo+"/manifests/"+digestOf(m), m, mt); err != nil {
					errc <- fmt.Errorf("referrer %d: %w", i, err)
					return
				}
			}
		}()
	}
	pushers.Wait()
	close(errc)
	return h, <-errc
}

// referrerFlood lists h anonymously from six connections at once, over
// and over, following the Link headers; every walk must return every
// referrer whole, on several pages.
func referrerFlood(ctx context.Context, cfg config, local string, h *hugeReferrers, hostile *tally) {
	const walkers = 6
	var wg sync.WaitGroup
	for w := 0; w < walkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			anon := newClient(cfg, local, "", "", 1)
			for ctx.Err() == nil {
				n, err := walkReferrers(anon, h.path, h.annotationBytes)
				switch {
				case err != nil:
					hostile.fail("referrers: %v", err)
					return
				case n != h.count:
					hostile.fail("referrers: a walk found %d of %d", n, h.count)
					return
				}
				hostile.add("referrers: full walks")
			}
		}()
	}
	wg.Wait()
}

// walkReferrers lists every page and returns how many referrers it saw,
// checking each carries its whole annotation.
func walkReferrers(c *ociClient, path string, annotation int) (int, error) {
	n, pages := 0, 0
	for next := path; next != ""; pages++ {
		resp, b, err := c.expect(context.Background(), 200, "GET", next, nil, nil)
		if err != nil {
			return n, err
		}
		var idx struct {
			Manifests []struct{ Annotations map[string]string }
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return n, err
		}
		for _, m := range idx.Manifests {
			if len(m.Annotations["big"]) != annotation {
				return n, fmt.Errorf("a referrer came with %d bytes of annotation, want %d", len(m.Annotations["big"]), annotation)
			}
			n++
		}
		next = ""
		if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			next = m[1]
		}
	}
	if n > 1 && pages < 2 {
		return n, fmt.Errorf("%d referrers with %d bytes of annotations each came in one response", n, annotation)
	}
	return n, nil
}

// sessionFlood opens upload sessions as mallory and never uses them.
func sessionFlood(ctx context.Context, cfg config, local string, hostile *tally) {
	const workers = 4
	mallory := newClient(cfg, local, "mallory", cfg.malloryPW, workers)
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, _, err := mallory.do(context.Background(), "POST", "/v2/hostile/flood/blobs/uploads/", nil, nil)
				switch {
				case err != nil:
					hostile.add("upload sessions: request failed (client side)")
				case resp.StatusCode == 202:
					hostile.add("upload sessions: 202 opened")
				case resp.StatusCode >= 500:
					hostile.fail("upload sessions: %d", resp.StatusCode)
				default:
					hostile.add(fmt.Sprintf("upload sessions: %d refused", resp.StatusCode))
				}
				pause(ctx, 5*time.Millisecond)
			}
		}()
	}
	wg.Wait()
}
