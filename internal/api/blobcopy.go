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
// server to the client. Its socket buffers point at page-cache pages no
// CPU has touched, so the client's read(2) copies them out of DRAM, and a
// Go client (containerd, docker, crane, regctl) does that copy on the very
// core that then hashes the bytes. Measured on the 2-core bench machine
// (perf, strace, /usr/bin/time on a Go client doing io.Copy into sha256 over
// a 256 MiB blob): the client's reads are full 32 KiB either way and it
// almost never waits for data (3 EAGAIN in 8,000 reads), yet it spends
// about 1.5 s of CPU per GiB behind sendfile against 1.1 s behind 32-128
// KiB writes: _copy_to_iter takes twice the time, softirq work lands on
// the client, and the hash itself runs slower. The client is the
// bottleneck (sha256 is about 1.5 GiB/s on a core), so a 64 KiB
// read+write on the server, whose core has time to spare, makes the pull
// faster: the server reads the page cache and the client copies from
// socket buffers still warm in the cache. curl piped into sha256sum sees
// no difference because the hash runs in another process. Over a real
// network the client copies from its NIC's buffers either way and only
// the server's CPU differs; build with -tags octoserve_sendfile to serve
// with sendfile there (the bench compares both).
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
