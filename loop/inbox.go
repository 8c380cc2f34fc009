//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"net"
	"sync"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
)

// The inbox of a loop. What other goroutines hand to a loop (a frame to
// send, a close to start, a function to run with Server.Execute) goes into
// the loop's inbox, a FIFO list under a mutex, and the loop runs it in that
// order. So the order of a loop's work is upgate's own rule, not a property
// of gnet's task queues: for any connection, writes and Execute calls run in
// the order they were queued, whichever goroutines queued them.
//
// The loop takes its inbox in the read phase of its event loop, once per
// turn, not in a task: a goroutine that queues into an empty inbox writes
// one byte to the loop's wake connection, a loopback TCP connection
// registered on that loop (gnet's documented EventLoop.Enroll), and the
// loop's read callback for it drains the inbox. The drain takes the work
// queued before it began; work queued meanwhile wakes the loop again and
// waits for its next turn, after the loop read its sockets. A loop that has
// more work handed to it than it can do therefore still reads its
// connections and runs its timers between two drains, instead of running
// tasks back to back while their input waits unread (gnet runs the tasks it
// is handed, and those they hand on, until its queue is empty before it
// polls again; its API promises no order and no fairness, so upgate relies
// on neither).
//
// When the wake connection cannot be set up (no loopback interface), the
// loop falls back to gnet's EventLoop.Execute for its wake-ups: the order is
// still the inbox's, but a drain may then follow another without a poll in
// between.

// Kinds of inbox work.
const (
	opExec  uint8 = iota + 1 // run fn
	opSend                   // write a frame to c
	opClose                  // write c's close frame, then wait for the peer's
	opRaw                    // write bytes to c's socket as they are (TLS handshake records)
)

// inboxOp is one piece of work handed to a loop.
type inboxOp struct {
	c      *conn
	id     uint64                     // the connection c held when the op was queued
	buf    *bytebufferpool.ByteBuffer // an owned frame, nil for shared or opExec
	shared []byte                     // a frame shared with other receivers (SendFrame)
	fn     func()
	n      int32 // bytes counted in c.pending
	kind   uint8
	why    uint8
	code   ws.StatusCode
}

func (op *inboxOp) bytes() []byte {
	if op.buf != nil {
		return op.buf.B
	}
	return op.shared
}

// release gives op's buffer back and, for work that is not done, the bytes
// it counted in its connection's pending total.
func (op *inboxOp) release(done bool) {
	if !done && op.c != nil {
		op.c.pending.Add(-op.n)
	}
	if op.buf != nil {
		bytebufferpool.Put(op.buf)
	}
	*op = inboxOp{}
}

// drop gives back the buffer of op that was never queued.
func (op *inboxOp) drop() {
	if op.buf != nil {
		bytebufferpool.Put(op.buf)
	}
	*op = inboxOp{}
}

// inbox is the queue of one loop. ops, oldest, woken and closed are under
// mu; the wake connection too, so that it is never written once closed.
type inbox struct {
	mu     sync.Mutex
	ops    []inboxOp
	oldest int64 // when the first of ops was queued (Server.since)
	woken  bool  // a wake-up is on its way and the loop has not taken ops yet
	closed bool  // the server is stopping: nothing more is taken
	wake   net.Conn
}

// wakeByte is what a wake-up writes.
var wakeByte = [1]byte{1}

// post queues op for the loop; false when the server is stopping (op is
// then the caller's to release). Any goroutine, the loop's included.
func (l *evloop) post(op inboxOp) bool {
	in := &l.in
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return false
	}
	w, wake := l.queue(op)
	in.mu.Unlock()
	if wake {
		l.wake(w)
	}
	return true
}

// queue appends op; it reports whether the loop must be woken and through
// which connection. in.mu held.
func (l *evloop) queue(op inboxOp) (w net.Conn, wake bool) {
	in := &l.in
	if len(in.ops) == 0 {
		in.oldest = l.srv.since()
	}
	in.ops = append(in.ops, op)
	wake = !in.woken
	in.woken = true
	return in.wake, wake
}

// postSend queues the frame of op (an opSend) for op.c if c is open and its
// queue has room, and counts its bytes in c.pending. The phase is checked
// under the inbox lock, which a goroutine closing c takes after it left
// stOpen (fence, postLast): so every frame accepted here is queued before
// c's close frame. On an error op stays the caller's. Any goroutine.
func (l *evloop) postSend(op *inboxOp) error {
	c := op.c
	in := &l.in
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return ErrClosed
	}
	if p := c.phaseOf(op.id); p != stOpen {
		in.mu.Unlock()
		return phaseErr(p)
	}
	if int(c.pending.Add(op.n))-int(op.n) > l.srv.opts.MaxOutbound {
		c.pending.Add(-op.n)
		in.mu.Unlock()
		return ErrSlowConsumer
	}
	w, wake := l.queue(*op)
	in.mu.Unlock()
	*op = inboxOp{}
	if wake {
		l.wake(w)
	}
	return nil
}

// fence waits until no goroutine is between its check of a connection's
// phase and the queuing of its frame: called once the connection has left
// stOpen, after it c.pending counts every frame that will ever be queued
// for c. Any goroutine.
func (l *evloop) fence() {
	l.in.mu.Lock()
	// Empty on purpose: taking the lock waits for its holders.
	l.in.mu.Unlock()
}

// wake makes the loop drain its inbox soon, through its wake connection w
// or, without one, gnet's task queue. Any goroutine. At most one byte
// waits in w at a time (woken stays set until the loop drains), so the
// write never blocks; a write after w was closed (the server stops) fails
// safely.
func (l *evloop) wake(w net.Conn) {
	if w != nil {
		if _, err := w.Write(wakeByte[:]); err == nil {
			return
		}
	}
	if l.bound.Load() {
		_ = l.el.Execute(context.Background(), l.inboxRunnable)
	}
	// Not bound yet: bind wakes the loop for what is queued.
}

// inboxTask is drainInbox as a gnet task (the fallback wake-up).
func (l *evloop) inboxTask(context.Context) error {
	l.drainInbox()
	return nil
}

// drainInbox runs the work queued before it began. Loop goroutine.
func (l *evloop) drainInbox() {
	in := &l.in
	in.mu.Lock()
	run := in.ops
	in.ops = l.run[:0]
	oldest := in.oldest
	in.woken = false
	in.mu.Unlock()
	if len(run) == 0 {
		l.run = run
		return
	}
	l.recordLag(oldest)
	l.depth++
	for i := range run {
		l.do(&run[i])
	}
	l.leave()
	l.run = run[:0]
}

// do runs one piece of inbox work.
func (l *evloop) do(op *inboxOp) {
	c := op.c
	switch op.kind {
	case opExec:
		fn := op.fn
		op.release(true)
		fn()
		return
	case opSend:
		c.pending.Add(-op.n)
		if c.phase() != stClosed && c.id.Load() == op.id {
			l.write(c, op.bytes())
			if c.phase() == stOpen && c.gc.OutboundBuffered() > l.srv.opts.MaxOutbound {
				l.slowConsumer(c)
			}
		}
	case opRaw:
		if c.phase() != stClosed && c.id.Load() == op.id {
			if l.cur == c {
				l.flush()
			}
			_, _ = c.gc.Write(op.bytes())
		}
	case opClose:
		c.pending.Add(-op.n)
		if c.phase() != stClosed && c.id.Load() == op.id {
			l.write(c, op.bytes())
			l.closeWritten(c, op.code, op.why, nil)
		}
	}
	op.release(true)
}

// closeInbox stops taking work and drops what is queued. Any goroutine.
func (l *evloop) closeInbox() {
	in := &l.in
	in.mu.Lock()
	in.closed = true
	ops := in.ops
	in.ops = nil
	if in.wake != nil {
		_ = in.wake.Close()
		in.wake = nil
	}
	in.mu.Unlock()
	for i := range ops {
		ops[i].release(false)
	}
}

// wakerMark is the context of a loop's wake connection in gnet.
type wakerMark struct{ l *evloop }

// startWaker sets up the loop's wake connection: a loopback TCP pair, one
// end enrolled on the loop, the other kept for writing wake-ups. It runs
// once, on the loop, when the loop is first seen; until the enrolled end is
// registered, wake-ups wait in its socket. On failure the loop keeps the
// fallback. Loop goroutine.
func (l *evloop) startWaker() {
	w, err := l.enrollWaker()
	if err != nil {
		l.srv.opts.Logger.Warnf("loop: event loop %d: no wake connection (%v): falling back to gnet's task queue", l.idx, err)
		return
	}
	in := &l.in
	in.mu.Lock()
	if in.closed {
		_ = w.Close()
	} else {
		in.wake = w
	}
	in.mu.Unlock()
}

// enrollWaker makes the loopback pair, enrolls one end on the loop and
// returns the other.
func (l *evloop) enrollWaker() (net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	w, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	r, err := ln.Accept()
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	if tc, ok := w.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	ctx := gnet.NewContext(context.Background(), &wakerMark{l})
	if _, err := l.el.Enroll(ctx, r); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, err
	}
	return w, nil
}
