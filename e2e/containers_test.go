//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// podman and buildah (Debian's packages) run as root on a storage of the
// session's own: the vfs driver (plain directories, no mounts), graph root,
// run root, temporary files and network configuration under the test's
// temporary directory, so nothing touches the machine's container storage.

// useContainersStorage writes the session's storage.conf and
// containers.conf, points podman and buildah at them, and checks both use
// them.
func (s *session) useContainersStorage() {
	s.t.Helper()
	if os.Geteuid() != 0 {
		s.t.Fatal("the podman and buildah scenarios run as root (vfs storage in the test's directory, no user namespace)")
	}
	for _, bin := range []string{"podman", "buildah"} {
		if _, err := exec.LookPath(bin); err != nil {
			s.t.Fatalf("%s not found: apt-get install podman buildah", bin)
		}
	}
	base := filepath.Join(s.dir, ".containers")
	graphRoot := filepath.Join(base, "storage")
	for _, d := range []string{graphRoot, filepath.Join(base, "run"), filepath.Join(base, "tmp"), filepath.Join(base, "net")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			s.t.Fatal(err)
		}
	}
	storageConf := s.writeFile(".containers/storage.conf", []byte(fmt.Sprintf(`[storage]
driver = "vfs"
graphroot = %q
runroot = %q
`, graphRoot, filepath.Join(base, "run"))))
	containersConf := s.writeFile(".containers/containers.conf", []byte(fmt.Sprintf(`[engine]
tmp_dir = %q
image_copy_tmp_dir = %q
events_logger = "none"
cgroup_manager = "cgroupfs"

[network]
network_config_dir = %q
`, filepath.Join(base, "tmp"), filepath.Join(base, "tmp"), filepath.Join(base, "net"))))
	s.env = append(s.env, "CONTAINERS_STORAGE_CONF="+storageConf, "CONTAINERS_CONF="+containersConf)
	want := "vfs " + graphRoot + " " + filepath.Join(base, "run")
	if got := firstLine(s.podman("info", "--format", "{{.Store.GraphDriverName}} {{.Store.GraphRoot}} {{.Store.RunRoot}}")); got != want {
		s.t.Fatalf("podman storage is %q, want %q", got, want)
	}
	if got := firstLine(s.buildah("info", "--format", "{{.store.GraphDriverName}} {{.store.GraphRoot}} {{.store.RunRoot}}")); got != want {
		s.t.Fatalf("buildah storage is %q, want %q", got, want)
	}
}

// podman and buildah run the client; the registry is plain HTTP on loopback.
func (s *session) podman(args ...string) string {
	s.t.Helper()
	return s.must("podman", args...)
}

func (s *session) buildah(args ...string) string {
	s.t.Helper()
	return s.must("buildah", args...)
}

// mountedFile reads a file of an image in local storage: the vfs driver
// "mounts" an image as a plain directory, so this needs no mount at all.
func (s *session) mountedFile(client, image, path string) []byte {
	s.t.Helper()
	var dir string
	switch client {
	case "podman":
		dir = firstLine(s.podman("image", "mount", image))
		defer s.podman("image", "unmount", image)
	case "buildah":
		ctr := firstLine(s.buildah("from", "--pull=never", image))
		defer s.buildah("rm", ctr)
		dir = firstLine(s.buildah("mount", ctr))
		defer s.buildah("umount", ctr)
	default:
		s.t.Fatalf("mountedFile: unknown client %s", client)
	}
	b, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(path, "/")))
	if err != nil {
		s.t.Fatalf("%s image %s: %v", client, image, err)
	}
	return b
}
