//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"runtime"
)

// maxLoops is gnet's bound on the number of event loops.
const maxLoops = 256

// numLoops is the number of event loops gnet runs for o.
func numLoops(o Options) int {
	n := 1
	if o.Multicore {
		n = runtime.NumCPU()
	}
	if o.NumLoops > 0 {
		n = o.NumLoops
	}
	return min(n, maxLoops)
}

// Loops returns the number of event loops the server runs (or will run, once
// started): every Conn.LoopIndex is below it. Any goroutine. It never
// changes, unless gnet runs more loops than Options asked for (it does not
// as of v2.9.7): the count then follows gnet's.
func (s *Server) Loops() int { return len(*s.loops.Load()) }

// Execute runs fn on the event loop with the given index (a
// Conn.LoopIndex), where fn may use every method of the loop's connections
// that a Handler method may: a Write or WriteFrame from fn writes at once,
// with no copy into a queue and no allocation. It is the way to reach
// many connections of one loop with one hand-off, such as a broadcast that
// shares one encoded frame. Any goroutine; fn must not block.
//
// Ordering: fn goes into the loop's inbox (see inbox.go), the one FIFO queue
// that also carries the writes and closes that Send, SendFrame and Close
// queue from goroutines other than the loop. So for any connection of that
// loop, fn runs after every write that was queued before Execute was called
// and before every write queued after Execute returned, whichever goroutines
// queued them. Writes made from inside fn go out in the order fn makes them.
// The loop runs fn in its read phase, after it read its sockets: work queued
// while the loop is busy waits for its next turn rather than delaying its
// reads and timers.
//
// Connections that end while fn runs have Handler.OnClose called after fn
// returns. A connection whose close handshake began before fn runs refuses
// fn's sends with ErrClosed.
//
// Every loop is reached when Start returns (see reach.go), so fn runs
// whether or not the loop has had a connection yet; fn queued before Start
// runs once the loop runs. Execute returns ErrNoLoop for an index out of
// [0, Loops()) and ErrServerStopped once the server is stopping: fn is then
// not run. It allocates nothing of its own in steady state (the inbox grows
// once to the largest batch).
func (s *Server) Execute(loop int, fn func()) error {
	loops := *s.loops.Load()
	if loop < 0 || loop >= len(loops) {
		return ErrNoLoop
	}
	if s.stopping.Load() || !loops[loop].post(inboxOp{kind: opExec, fn: fn}) {
		return ErrServerStopped
	}
	return nil
}
