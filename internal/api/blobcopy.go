package api

import (
	"io"
	"net/http"
	"sync"
)

// Blob bodies are copied through user space in blobWriteSize writes
// instead of being handed to the kernel with sendfile(2).
//
// Why: on the same host (loopback: a node-local registry, CI, the bench)
// sendfile is not zero-copy, it moves the one copy of the bytes from the
// server's core to the client's. The socket buffers point at page-cache
// pages no CPU has touched, so the client's read(2) copies them out of
// DRAM, and a Go client (containerd, docker, crane, regctl) does that on
// the goroutine that then hashes the bytes: the client, already the
// bottleneck (sha256 runs at about 1.5 GiB/s on a core), gets slower
// while the server's core idles. Measured on the 2-core bench machine, a
// Go client doing io.Copy into sha256 over a 256 MiB blob, CPU seconds
// per GiB (user+sys): behind 64 KiB writes 0.85+0.47, behind sendfile
// 0.97+0.91; behind sendfile of a 1 MiB file sent over and over (its
// pages stay in the CPU cache) 1.0+0.5 — the extra system time is the
// cold copy, not the syscall pattern. The client's reads are full 32 KiB
// either way and it almost never waits for data (strace: 3 EAGAIN in
// 8,000 reads), so socket buffers and TCP_NODELAY (set on both) are not
// the cause. With writes, the server reads the page cache on its own core
// and the client copies socket buffers still warm in the cache. curl piped
// into sha256sum sees no difference: the hash runs in another process, on
// the other core. 32 to 128 KiB writes measured alike; 1 MiB slightly
// worse. Over a real network the client copies from its NIC's buffers
// either way and only the server's CPU differs (sendfile costs it less);
// build with -tags octoserve_sendfile to serve with sendfile there. The
// bench runs both builds (make bench, "Pull path A/B").
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

// blobWriter is the writer blob bodies are served through.
func blobWriter(w http.ResponseWriter) http.ResponseWriter {
	if sendfileBlobs {
		return w
	}
	return bufferedWriter{w}
}
