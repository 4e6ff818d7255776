package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// PacedProxy forwards every request to target and sends response bodies
// on at no more than rate bytes per second: a registry behind a link of
// that speed, as an upstream on the internet is.
func PacedProxy(target string, rate float64) (http.Handler, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("paced proxy target: %w", err)
	}
	if rate <= 0 {
		return nil, fmt.Errorf("paced proxy rate %v: must be positive", rate)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &pacedBody{ReadCloser: resp.Body, rate: rate, start: time.Now()}
		return nil
	}
	return rp, nil
}

// pacedBody delays reads so that no more than rate bytes per second pass.
type pacedBody struct {
	io.ReadCloser
	rate  float64
	start time.Time
	n     int64
}

func (p *pacedBody) Read(buf []byte) (int, error) {
	if len(buf) > 64<<10 {
		buf = buf[:64<<10]
	}
	n, err := p.ReadCloser.Read(buf)
	p.n += int64(n)
	if ahead := time.Duration(float64(p.n)/p.rate*float64(time.Second)) - time.Since(p.start); ahead > 0 {
		time.Sleep(ahead) // the link's pace, not synchronisation
	}
	return n, err
}

// Serve serves h on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
