//go:build !linux

package loadgen

import "os"

func fdatasync(f *os.File) error { return f.Sync() }
