//go:build linux

package tunnel

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Tunnel is one pair of spliced sockets, A (the client) and B (the
// upstream). Its methods may be called from any goroutine.
type Tunnel struct {
	id     uint64
	a, b   int
	mode   Mode
	opened time.Time
	loop   *loop
	onEnd  func(*Tunnel, error)
	prefix []byte // bytes from A for B, before anything else

	bytesAB, bytesBA atomic.Int64
	buffered, peak   atomic.Int64
	closeAsked       atomic.Bool

	// Owned by the loop's goroutine.
	idx      int    // in loop.list; -1 once ended
	evA, evB uint32 // events watched on a and b
	active   int64  // loop time of the last byte moved
	deadline int64  // loop time the tunnel must end by; 0: none
	stopping bool   // a close started by the tunnel is under way
	ended    bool
	raw      [2]rawDir // Raw mode: A→B, B→A
	ws       *wsState  // WebSocket mode
}

// ID returns the tunnel's identifier, unique within its Reactor.
func (t *Tunnel) ID() uint64 { return t.id }

// Mode returns the mode the tunnel was started with.
func (t *Tunnel) Mode() Mode { return t.mode }

// Opened returns when Splice started the tunnel.
func (t *Tunnel) Opened() time.Time { return t.opened }

// BytesAB returns the stream bytes delivered to B so far.
func (t *Tunnel) BytesAB() int64 { return t.bytesAB.Load() }

// BytesBA returns the stream bytes delivered to A so far (in WebSocket
// mode, payload bytes, not counting frame headers).
func (t *Tunnel) BytesBA() int64 { return t.bytesBA.Load() }

// Buffered returns the bytes the tunnel holds now, read from one side and
// not yet written to the other, both directions together: at most about
// 2 × Options.PipeSize.
func (t *Tunnel) Buffered() int64 { return t.buffered.Load() }

// Close ends the tunnel: in Raw mode it closes both sockets, in WebSocket
// mode it first sends A a close frame 1001 (going away), within
// Options.DrainTimeout. onEnd then runs with ErrClosed, unless the tunnel
// had already ended. Close returns at once and may be called more than once.
func (t *Tunnel) Close() {
	if t.closeAsked.Swap(true) {
		return
	}
	t.loop.send(command{kind: cmdClose, t: t})
}

// start runs once the loop has registered t.
func (t *Tunnel) start() {
	if t.mode == WebSocket {
		t.ws = newWSState(t)
	} else {
		t.raw[0] = rawDir{src: t.a, dst: t.b, pre: t.prefix, n: &t.bytesAB}
		t.raw[1] = rawDir{src: t.b, dst: t.a, n: &t.bytesBA}
	}
	t.prefix = nil
	t.pump()
}

// handle reacts to events on fd, one of t's sockets.
func (t *Tunnel) handle(fd int, events uint32) {
	if events&unix.EPOLLERR != 0 {
		if e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
			t.broken(fd == t.a, unix.Errno(e))
			return
		}
	}
	t.pump()
}

// pump moves what can be moved both ways, then updates what epoll watches
// and ends the tunnel when it is done.
func (t *Tunnel) pump() {
	if t.mode == WebSocket {
		t.pumpWS()
		return
	}
	for i := range t.raw {
		d := &t.raw[i]
		if err := t.pumpRaw(d); err != nil {
			t.end(err)
			return
		}
	}
	t.settleRaw()
}

// broken reacts to an error on side A (onA) or B.
func (t *Tunnel) broken(onA bool, err error) {
	if t.mode == WebSocket && !onA {
		t.failWS(statusInternal, err)
		return
	}
	t.end(err)
}

// stop starts a close asked by the program (Close, Shutdown, IdleTimeout).
func (t *Tunnel) stop(err error) {
	if t.ended || t.stopping {
		return
	}
	if t.mode == WebSocket && t.ws != nil {
		t.failWS(statusGoingAway, err)
		return
	}
	t.end(err)
}

// startDrain starts the drain timer unless it runs already.
func (t *Tunnel) startDrain() {
	if t.deadline == 0 {
		t.deadline = t.loop.now + int64(t.loop.r.opts.DrainTimeout)
	}
}

// watch makes epoll watch evA on a and evB on b.
func (t *Tunnel) watch(evA, evB uint32) bool {
	l := t.loop
	if err := l.setInterest(t.a, &t.evA, evA); err != nil {
		t.end(err)
		return false
	}
	if err := l.setInterest(t.b, &t.evB, evB); err != nil {
		t.end(err)
		return false
	}
	return true
}

// account records n bytes moved and the bytes now held.
func (t *Tunnel) account(held int64) {
	t.buffered.Store(held)
	if held > t.peak.Load() {
		t.peak.Store(held)
	}
}

// end closes both sockets, releases what t holds and runs onEnd with err.
func (t *Tunnel) end(err error) {
	if t.ended {
		return
	}
	t.ended = true
	l := t.loop
	l.setInterest(t.a, &t.evA, 0) //nolint:errcheck // closing removes it anyway
	l.setInterest(t.b, &t.evB, 0) //nolint:errcheck
	unix.Close(t.a)
	unix.Close(t.b)
	for i := range t.raw {
		t.raw[i].release(l)
	}
	if t.ws != nil {
		t.ws.release()
	}
	t.buffered.Store(0)
	l.remove(t)
	if t.onEnd != nil {
		t.onEnd(t, err)
	}
}
