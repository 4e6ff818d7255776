package registry

import (
	"hash"
	"io"
	"sync"
)

// hashCopyBuf is the size of the buffers copyHashing reads into: large
// enough that a fast client's body is read, written and hashed in few
// calls, small enough that concurrent uploads hold little memory (three
// buffers each).
const hashCopyBuf = 256 << 10

var hashBufs = sync.Pool{New: func() any { b := make([]byte, hashCopyBuf); return &b }}

// copyHashing copies src to w and feeds the same bytes to h, hashing on a
// goroutine of its own while the next buffer is read and written: a big
// upload's sha256 then costs no wall time beside its reading and writing,
// on a second core. w and h see the bytes in order; an error of either
// side stops the copy.
func copyHashing(w io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	free := make(chan *[]byte, 3)
	for range 3 {
		free <- hashBufs.Get().(*[]byte)
	}
	hashing := make(chan []byte, 3)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range hashing {
			h.Write(b)
			free <- &b
		}
	}()
	var n int64
	var err error
	for err == nil {
		bp := <-free
		b := (*bp)[:cap(*bp)]
		k, rerr := src.Read(b)
		if k > 0 {
			if _, werr := w.Write(b[:k]); werr != nil {
				err = werr
			} else {
				n += int64(k)
				hashing <- b[:k]
				bp = nil
			}
		}
		if bp != nil {
			free <- bp
		}
		if rerr == io.EOF {
			break
		}
		if err == nil {
			err = rerr
		}
	}
	close(hashing)
	<-done
	for range 3 {
		b := <-free
		hashBufs.Put(b)
	}
	return n, err
}
