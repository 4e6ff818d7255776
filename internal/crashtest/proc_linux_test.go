package crashtest

import "syscall"

// procAttr makes the kernel kill octoserve if the test process dies
// (a go test timeout, say) before its cleanup could.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
