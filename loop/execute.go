package loop

import (
	"runtime"
	"sync"

	"github.com/panjf2000/gnet/v2"
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
// Ordering: gnet runs the tasks it is handed for a loop in one FIFO queue,
// shared by Execute and by the writes that Send, SendFrame and Close queue
// from goroutines other than the loop (gnet's high-priority queue: Execute
// hands fn over as a write of no bytes, so gnet's low-priority queue, which
// may be overtaken, is never used). So for any connection of that loop, fn
// runs after every write that was queued before Execute was called and
// before every write queued after Execute returned, whichever goroutines
// queued them. Writes made from inside fn go out in the order fn makes them.
//
// Connections that end while fn runs have Handler.OnClose called after fn
// returns. A connection whose close handshake began before fn runs refuses
// fn's sends with ErrClosed.
//
// Execute returns ErrNoLoop when no connection was ever accepted on that
// loop (it has nothing to reach yet) and ErrServerStopped once the server is
// stopping: fn is then not run. A task queued just before the engine stops
// may not run either. It costs no allocation of this package; gnet
// allocates its small task records.
func (s *Server) Execute(loop int, fn func()) error {
	loops := *s.loops.Load()
	if loop < 0 || loop >= len(loops) {
		return ErrNoLoop
	}
	l := loops[loop]
	s.execs.Add(1)
	defer s.execs.Add(-1)
	if s.stopping.Load() {
		return ErrServerStopped
	}
	o := execPool.Get().(*execOp)
	o.l, o.fn, o.at = l, fn, s.since()
	if err := l.anchor.AsyncWritev(nil, o.cb); err != nil {
		o.release()
		return ErrServerStopped
	}
	return nil
}

// execOp is one Execute task. It comes from a pool with its callback bound
// once, so that Execute allocates nothing of this package.
type execOp struct {
	l  *evloop
	fn func()
	at int64 // when Execute queued it (Server.since), for the lag histogram
	cb gnet.AsyncCallback
}

var execPool sync.Pool

func init() {
	execPool.New = func() any {
		o := new(execOp)
		o.cb = o.run
		return o
	}
}

func (o *execOp) release() {
	o.l, o.fn = nil, nil
	execPool.Put(o)
}

// run is called by gnet on the loop once the write of no bytes was "done";
// the anchor connection may be closed by then (err), which does not matter:
// it only names the loop.
func (o *execOp) run(gnet.Conn, error) error {
	l, fn, at := o.l, o.fn, o.at
	o.release()
	l.recordLag(at)
	l.depth++
	fn()
	l.leave()
	return nil
}

// waitExecs waits, once stopping is set, for the Execute calls still handing
// a task to gnet: the engine must not close its pollers under them.
func (s *Server) waitExecs() {
	for s.execs.Load() > 0 {
		runtime.Gosched()
	}
}
