package api

import (
	"io"
	"net/http"
	"runtime"
	"sync"
)

// A blob body goes out one of two ways, whichever is faster for the Go
// clients that pull it (containerd, docker, crane, regctl hash what they
// read, on the goroutine that reads it):
//
//   - sendfile(2), when other blob downloads are already in flight: it
//     spends the least CPU in total (no copy on the server at all), and
//     once the server's cores are busy that is what decides. make bench,
//     a 10-layer image pulled by 32 clients on 2 cores: 740 MiB/s with
//     sendfile against 338 with the copy below, in the same run.
//   - a copy through user space in blobWriteSize writes, when the
//     download is alone (at most GOMAXPROCS/2 in flight). On the same
//     host (loopback: a node-local registry, CI, the bench) sendfile is
//     not zero-copy, it moves the one copy of the bytes from the server's
//     core to the client's: the socket buffers point at page-cache pages
//     no CPU has touched, so the client's read(2) copies them out of DRAM
//     on the goroutine that then hashes them, and the client is the
//     bottleneck (sha256 runs at about 1.5 GiB/s on a core) while the
//     server's core idles. Measured on the 2-core machine, a Go client
//     doing io.Copy into sha256 over a 256 MiB blob, CPU seconds per GiB
//     (user+sys): behind 64 KiB writes 0.85+0.47, behind sendfile
//     0.97+0.91; behind sendfile of a 1 MiB file sent over and over (its
//     pages stay in the CPU cache) 1.0+0.5 — the extra system time is the
//     cold copy, not the syscall pattern. The client's reads are full 32
//     KiB either way and it almost never waits for data (strace: 3 EAGAIN
//     in 8,000 reads), so socket buffers and TCP_NODELAY (set on both) are
//     not the cause. With writes, the server reads the page cache on its
//     own idle core and the client copies socket buffers still warm in
//     the cache. curl piped into sha256sum sees no difference: the hash
//     runs in another process, on the other core. 32 to 128 KiB writes
//     measured alike; 1 MiB slightly worse.
//
// Over a real network the client copies from its NIC's buffers either way
// and only the server's CPU differs, in sendfile's favour; build with
// -tags octoserve_sendfile to always use it (the bench runs that build
// too: "Pull path A/B").
const blobWriteSize = 64 << 10

var blobBuffers = sync.Pool{New: func() any { b := make([]byte, blobWriteSize); return &b }}

// bufferedWriter gives http.ServeContent a ReadFrom that copies through a
// pooled buffer with plain Writes, so the connection's sendfile path is
// never taken. Range, HEAD and conditional requests stay ServeContent's.
type bufferedWriter struct{ http.ResponseWriter }

func (w bufferedWriter) ReadFrom(src io.Reader) (int64, error) {
	buf := blobBuffers.Get().(*[]byte)
	defer blobBuffers.Put(buf)
	// Neither side may offer a shortcut: a ReadFrom on the writer or a
	// WriteTo on the reader (*os.File has one) would bring sendfile back.
	return io.CopyBuffer(writerOnly{w.ResponseWriter}, readerOnly{src}, *buf)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w bufferedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type writerOnly struct{ io.Writer }

type readerOnly struct{ io.Reader }

// blobWriter is the writer a blob body is served through (see above);
// call done when the body is sent.
func (a *API) blobWriter(w http.ResponseWriter) (out http.ResponseWriter, done func()) {
	inFlight := a.blobSends.Add(1)
	done = func() { a.blobSends.Add(-1) }
	if sendfileBlobs || inFlight > int64(max(1, runtime.GOMAXPROCS(0)/2)) {
		return w, done
	}
	return bufferedWriter{w}, done
}
