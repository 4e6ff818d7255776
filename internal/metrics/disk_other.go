//go:build !linux

package metrics

// WatchFilesystem does nothing here: the file system metrics read Linux's
// statfs.
func (m *Metrics) WatchFilesystem(root string) {}
