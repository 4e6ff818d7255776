package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/octoserve/octoserve/internal/auth"
)

// htpasswd prints an htpasswd line for a user, with a bcrypt hash of the
// password read from the first line of stdin (never from the command
// line, where other users could see it), like `htpasswd -nB` does.
func htpasswd(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("htpasswd", flag.ContinueOnError)
	cost := fs.Int("cost", bcrypt.DefaultCost, "bcrypt cost (4 to 31)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: octoserve htpasswd [--cost N] USER < password")
	}
	user := fs.Arg(0)
	if user == "" || strings.ContainsAny(user, ":\r\n") {
		return fmt.Errorf("user name %q must be non-empty and hold no ':' or newline", user)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the password: %w", err)
	}
	pass := strings.TrimRight(line, "\r\n")
	if pass == "" {
		return errors.New("empty password on stdin")
	}
	if err := auth.ValidatePassword(pass); err != nil {
		return fmt.Errorf("%w; octoserve refuses such passwords at login", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), *cost)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s:%s\n", user, hash)
	return err
}

func htpasswdMain(args []string) error { return htpasswd(args, os.Stdin, os.Stdout) }
