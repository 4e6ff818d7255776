package metrics

import (
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// filesystemCollector reports the space and inodes left on the file
// system holding a filesystem backend's root: one statfs per scrape, a
// microsecond. Every blob link is a file, so inodes can run out before
// bytes do.
type filesystemCollector struct {
	root                     string
	avail, size, files, free *prometheus.Desc
}

// WatchFilesystem exports the space left on the file system holding root.
func (m *Metrics) WatchFilesystem(root string) {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_storage_filesystem_"+name, help, nil, nil)
	}
	m.reg.MustRegister(&filesystemCollector{
		root:  root,
		avail: desc("avail_bytes", "Bytes available to octoserve on the file system holding the storage root."),
		size:  desc("size_bytes", "Size of the file system holding the storage root."),
		files: desc("files", "Inodes of the file system holding the storage root."),
		free:  desc("files_free", "Inodes free on the file system holding the storage root."),
	})
}

func (c *filesystemCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.avail
	ch <- c.size
	ch <- c.files
	ch <- c.free
}

// Collect exports nothing when statfs fails: the storage errors and
// /readyz say why.
func (c *filesystemCollector) Collect(ch chan<- prometheus.Metric) {
	var st syscall.Statfs_t
	if syscall.Statfs(c.root, &st) != nil {
		return
	}
	bsize := float64(st.Bsize)
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(c.avail, float64(st.Bavail)*bsize)
	gauge(c.size, float64(st.Blocks)*bsize)
	gauge(c.files, float64(st.Files))
	gauge(c.free, float64(st.Ffree))
}
