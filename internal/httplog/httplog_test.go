package httplog

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// logged serves one request through Handler and returns the response and
// the log records, decoded.
func logged(t *testing.T, next http.Handler, req *http.Request, opts ...Option) (*httptest.ResponseRecorder, []map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(WithRequestIDs(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	rec := httptest.NewRecorder()
	Handler(log, next, opts...).ServeHTTP(rec, req)
	var records []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		records = append(records, m)
	}
	return rec, records
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestRequestID(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		name, incoming string
		keep           bool
	}{
		{"none", "", false},
		{"uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"trace", "trace.1:a_B-9", true},
		{"too long", strings.Repeat("a", 65), false},
		{"log injection", "x\n level=ERROR msg=forged", false},
		{"quote", `a"b`, false},
		{"space", "a b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v2/", nil)
			if tc.incoming != "" {
				req.Header.Set(RequestIDHeader, tc.incoming)
			}
			rec, records := logged(t, ok, req)
			id := rec.Header().Get(RequestIDHeader)
			if tc.keep && id != tc.incoming || !tc.keep && !generatedID.MatchString(id) {
				t.Fatalf("response ID %q for incoming %q", id, tc.incoming)
			}
			if records[0]["requestId"] != id {
				t.Fatalf("logged ID %v, returned %q", records[0]["requestId"], id)
			}
		})
	}
	a, _ := logged(t, ok, httptest.NewRequest("GET", "/v2/", nil))
	b, _ := logged(t, ok, httptest.NewRequest("GET", "/v2/", nil))
	if a.Header().Get(RequestIDHeader) == b.Header().Get(RequestIDHeader) {
		t.Fatal("two requests got the same generated ID")
	}
}

// The log line names the API's query parameters and nothing else of the
// query, the authenticated user, and records logged inside the request
// carry its ID.
func TestLogLine(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetUser(r.Context(), "alice")
		slog.New(WithRequestIDs(slog.DiscardHandler)).InfoContext(r.Context(), "inside") // no panic without a record
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte("done"))
	})
	q := "mount=sha256:abc&from=lib%2Fa&password=hunter2&access_token=t0k&digest=sha256:def&n=10&last=x&artifactType=a%2Fb"
	req := httptest.NewRequest("POST", "/v2/app/blobs/uploads/?"+q, strings.NewReader("12345"))
	_, records := logged(t, h, req)
	line := records[0]
	want := map[string]any{
		"msg": "request", "method": "POST", "path": "/v2/app/blobs/uploads/", "status": 201.0,
		"bytes": 4.0, "bytesIn": 5.0, "user": "alice", "level": "INFO",
		"query": "artifactType=a%2Fb&digest=sha256%3Adef&from=lib%2Fa&last=x&mount=sha256%3Aabc&n=10",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	raw, _ := json.Marshal(line)
	for _, secret := range []string{"hunter2", "t0k", "password", "access_token"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("log line holds %q: %s", secret, raw)
		}
	}
}

func TestInsideRecordsCarryTheID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(WithRequestIDs(slog.NewJSONHandler(&buf, nil)))
	h := Handler(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.ErrorContext(r.Context(), "request failed")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/", nil))
	id := rec.Header().Get(RequestIDHeader)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log: %s", buf.String())
	}
	for _, l := range lines {
		if strings.Count(l, `"requestId":"`+id+`"`) != 1 {
			t.Errorf("line does not carry the request ID %s once: %s", id, l)
		}
	}
}

func TestQuietPaths(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	_, records := logged(t, ok, httptest.NewRequest("GET", "/readyz", nil), WithQuietPaths("/readyz"))
	if records[0]["level"] != "DEBUG" {
		t.Fatalf("probe logged at %v", records[0]["level"])
	}
}

type observed struct {
	started int
	res     Result
}

func (o *observed) Started(*http.Request)                { o.started++ }
func (o *observed) Finished(_ *http.Request, res Result) { o.res = res }

func TestObserverSeesTheResult(t *testing.T) {
	o := &observed{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("nothing here"))
	})
	logged(t, h, httptest.NewRequest("PUT", "/v2/x/manifests/y", strings.NewReader("body")), WithObserver(o))
	if o.started != 1 || o.res.Status != 404 || o.res.BytesIn != 4 || o.res.BytesOut != 12 || o.res.Duration <= 0 {
		t.Fatalf("observer saw %d starts, %+v", o.started, o.res)
	}
}

// readerFromWriter is a ResponseWriter whose ReadFrom is the connection's
// fast path (sendfile).
type readerFromWriter struct {
	*httptest.ResponseRecorder
	readFrom int
}

func (w *readerFromWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom++
	return io.Copy(w.ResponseRecorder, r)
}

// A handler copying a file reaches the connection's ReadFrom through the
// wrapper, and the bytes are still counted.
func TestReadFromPassesThrough(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, bytes.Repeat([]byte("b"), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	o := &observed{}
	h := Handler(slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _ := os.Open(p)
		defer f.Close()
		io.Copy(w, f)
	}), WithObserver(o))
	w := &readerFromWriter{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v2/x/blobs/sha256:0", nil))
	if w.readFrom != 1 || o.res.BytesOut != 10000 || o.res.Status != 200 {
		t.Fatalf("ReadFrom calls %d, bytes %d, status %d", w.readFrom, o.res.BytesOut, o.res.Status)
	}
}
