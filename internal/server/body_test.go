package server

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestDeadlineBodyRolls checks the rolling deadline without a clock: each
// read of the body first moves the read deadline to timeout from now (so
// a body that keeps moving is never cut off, however long it takes);
// over HTTP/2 the deadline is cleared between reads (the handler's time);
// once the body is read to its end the deadline is left alone (net/http
// reads the connection from then on).
func TestDeadlineBodyRolls(t *testing.T) {
	for _, http1 := range []bool{true, false} {
		var calls []time.Time
		b := &deadlineBody{
			ReadCloser:  io.NopCloser(iotest.OneByteReader(strings.NewReader("abc"))),
			setDeadline: func(d time.Time) error { calls = append(calls, d); return nil },
			timeout:     time.Hour,
			http1:       http1,
		}
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "abc" {
			t.Fatalf("read %q, %v", got, err)
		}
		// Reads: a, b, c, then EOF.
		var want []string
		for i := 0; i < 3; i++ {
			want = append(want, "future")
			if !http1 {
				want = append(want, "cleared")
			}
		}
		want = append(want, "future") // before the read that meets EOF
		var kinds []string
		for _, c := range calls {
			switch {
			case c.IsZero():
				kinds = append(kinds, "cleared")
			case c.After(time.Now().Add(30 * time.Minute)):
				kinds = append(kinds, "future")
			default:
				kinds = append(kinds, c.String())
			}
		}
		if strings.Join(kinds, " ") != strings.Join(want, " ") {
			t.Fatalf("http1=%v: deadlines %v, want %v", http1, kinds, want)
		}
		n := len(calls)
		if _, err := b.Read(make([]byte, 1)); err != io.EOF || len(calls) != n || !b.eof.Load() {
			t.Fatalf("after EOF: %v, %d deadline calls more", err, len(calls)-n)
		}
	}
}
