package dist

import (
	"os/exec"
	"syscall"
)

// childAttrs puts a rank in a process group of its own, so that a Ctrl-C
// on the terminal reaches it once, through Launch, and has the kernel kill
// it should the launcher die.
func childAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
