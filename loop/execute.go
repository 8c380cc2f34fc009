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
// started): every Conn.LoopIndex is below it. Any goroutine; never changes.
func (s *Server) Loops() int { return s.nloops }

// CurrentLoop returns the index of the event loop the caller runs on (in a
// Handler method or a task run by Execute), or -1 on any other goroutine.
// Any goroutine; no allocation.
func (s *Server) CurrentLoop() int {
	g := curG()
	for _, l := range *s.loops.Load() {
		if l.g == g {
			return l.idx
		}
	}
	return -1
}

// Execute runs fn on the event loop with the given index (a
// Conn.LoopIndex), where fn may use every method of the loop's connections
// directly, as a Handler method does: a Send or SendFrame from fn writes at
// once, with no copy into a queue and no allocation. It is the way to reach
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
// Execute returns ErrNoLoop when no connection was ever accepted on that
// loop (it has nothing to reach yet) and ErrServerStopped once the server is
// stopping: fn is then not run. It allocates nothing of its own in steady
// state (the inbox grows once to the largest batch).
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
