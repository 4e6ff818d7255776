// Command octoserve is an OCI distribution-spec v1.1 registry.
//
//	octoserve serve [--addr HOST:PORT] [--root DIR] [--config FILE] [--tls-cert FILE --tls-key FILE]
//	octoserve gc [--root DIR | --config FILE] [--dry-run] [--delete-untagged] [--min-age DURATION]
//	octoserve verify [--root DIR | --config FILE] [--read-only]
//	octoserve du [--root DIR | --config FILE] [--gc]
//	octoserve htpasswd [--cost N] USER < password
//	octoserve version
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "gc":
		err = gcMain(os.Args[2:])
	case "verify":
		err = verifyMain(os.Args[2:])
	case "du":
		err = duMain(os.Args[2:])
	case "htpasswd":
		err = htpasswdMain(os.Args[2:])
	case "version", "--version":
		fmt.Println("octoserve", version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "octoserve: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "octoserve:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  octoserve serve [--addr HOST:PORT] [--root DIR] [--config FILE] [--tls-cert FILE --tls-key FILE]
  octoserve gc [--root DIR | --config FILE] [--dry-run] [--delete-untagged] [--min-age DURATION]
  octoserve verify [--root DIR | --config FILE] [--read-only]   (re-hash blobs, check references; quarantines blobs that do not match their digest unless --read-only)
  octoserve du [--root DIR | --config FILE] [--gc]   (bytes per repository: only there, shared; the total; --gc: what gc --delete-untagged would free)
  octoserve htpasswd [--cost N] USER < password   (prints a bcrypt htpasswd line)
  octoserve version
`)
}
