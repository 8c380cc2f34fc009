// Package procs sets GOMAXPROCS for the benchmark's event-loop servers as
// cmd/upgate sets it for itself (cmd/upgate/procs.go): one P more than the
// loops take, unless GOMAXPROCS is in the environment. The gnet-based
// reference servers (ceiling, gnetws) get it too, so that they stay the
// floor they are meant to be: a gnet loop waits in epoll_wait(2) holding
// its P, and without a P to spare the runtime takes it away and gives it
// back at every pause of the loop.
package procs

import (
	"os"
	"runtime"
)

// Spare raises GOMAXPROCS by one when loops event loops would take every P
// and GOMAXPROCS is not set in the environment. It returns GOMAXPROCS.
func Spare(loops int) int {
	cur := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" || loops < cur {
		return cur
	}
	runtime.GOMAXPROCS(cur + 1)
	return cur + 1
}
