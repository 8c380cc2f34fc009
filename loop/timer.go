//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/frame"
	"github.com/upgate/upgate/parser"
)

// The timing wheel of a loop: wheelSize slots of one tick each. Every
// connection is always in exactly one slot (or being fired), so a loop can
// also reach all its connections through the wheel (see sweep). A deadline
// further than one revolution waits in its slot and is skipped until due.
// Deadlines are evaluated lazily: reads only record the tick of the last
// input, and a firing timer recomputes the real deadline and re-arms itself
// if it is not due yet, so the hot path never touches the wheel.
const (
	wheelSize = 512
	wheelMask = wheelSize - 1
	workList  = wheelSize // index of the work list in evloop.lists
)

var errTimeout = &parser.Error{Status: 408, Reason: "loop: request head not received in time", Body: "The request head did not arrive in time."}

// before reports whether tick a is before tick b (wrap-around safe).
func before(a, b uint32) bool { return int32(a-b) < 0 }

func (l *evloop) link(c *conn, at uint32) {
	i := int16(at & wheelMask)
	c.tat, c.tslot = at, i
	c.tprev = nil
	c.tnext = l.lists[i]
	if c.tnext != nil {
		c.tnext.tprev = c
	}
	l.lists[i] = c
}

func (l *evloop) unlink(c *conn) {
	if c.tslot < 0 {
		return
	}
	if c.tprev != nil {
		c.tprev.tnext = c.tnext
	} else {
		l.lists[c.tslot] = c.tnext
	}
	if c.tnext != nil {
		c.tnext.tprev = c.tprev
	}
	c.tnext, c.tprev, c.tslot = nil, nil, -1
}

// schedule (re)arms c's timer to fire at tick at, or at the next tick when
// at is not in the future.
func (l *evloop) schedule(c *conn, at uint32) {
	l.unlink(c)
	if !before(l.now, at) {
		at = l.now + 1
	}
	l.link(c, at)
}

// collect moves the connections of slot i to the work list.
func (l *evloop) collect(i int) {
	for c := l.lists[i]; c != nil; c = c.tnext {
		c.tslot = workList
	}
	w := l.lists[i]
	l.lists[i] = nil
	if w == nil {
		return
	}
	last := w
	for last.tnext != nil {
		last = last.tnext
	}
	last.tnext = l.lists[workList]
	if last.tnext != nil {
		last.tnext.tprev = last
	}
	l.lists[workList] = w
}

// advance moves the wheel to the current time and fires due timers.
func (l *evloop) advance() {
	target := uint32(time.Since(l.srv.start) / l.srv.opts.TimerResolution)
	if int32(target-l.now) > wheelSize {
		// After a long stall one revolution visits every slot once.
		l.now = target - wheelSize
	}
	for before(l.now, target) {
		l.now++
		l.collect(int(l.now & wheelMask))
		for c := l.lists[workList]; c != nil; c = l.lists[workList] {
			l.unlink(c)
			if before(l.now, c.tat) {
				l.link(c, c.tat)
			} else {
				l.fire(c)
			}
		}
	}
}

// sweep calls fn for every connection of the loop. fn may re-arm, close or
// leave the connection; one left alone keeps its deadline.
func (l *evloop) sweep(fn func(*conn)) {
	for i := 0; i < wheelSize; i++ {
		l.collect(i)
		for c := l.lists[workList]; c != nil; c = l.lists[workList] {
			l.unlink(c)
			fn(c)
			if c.tslot < 0 && c.phase() != stClosed {
				l.link(c, c.tat)
			}
		}
	}
}

// stamp is the tick to record for an event happening now, such as inbound
// bytes, rounded up so that a deadline counted from it never fires early.
// It reads the clock (tickNow): l.now only moves when the loop's timer task
// runs, which can wait behind a busy loop's other work, and the tick gnet's
// ticker goroutine refreshes is as late as that goroutine, which a starved
// CPU runs late too. A clock read costs some 20 ns, against the
// microseconds of the read it stamps.
func (l *evloop) stamp() uint32 { return l.tickNow() + 1 }

// tickNow is the current tick read from the clock, for a deadline set
// outside the timer's own work (an accept, a response, a close): l.now is
// only as fresh as the loop's last timer task, which a busy loop runs late,
// and a deadline counted from a stale l.now would fire early. Loop
// goroutine.
func (l *evloop) tickNow() uint32 {
	t := uint32(l.srv.since() / int64(l.srv.opts.TimerResolution))
	if before(t, l.now) {
		t = l.now
	}
	return t
}

// park is the far deadline of a connection with no timeout to watch, so
// that it stays reachable by sweep.
func (l *evloop) park() uint32 { return l.now + wheelSize - 1 }

// arm schedules c's next timer from its state.
func (l *evloop) arm(c *conn) {
	s := l.srv
	switch c.phase() {
	case stHead, stWait:
		if s.hsTicks == 0 {
			l.schedule(c, l.park())
		} else {
			l.schedule(c, c.mark)
		}
	case stOpen:
		at, set := l.park(), false
		if s.idleTicks > 0 {
			at, set = c.lastRead+s.idleTicks, true
		}
		if d, ok := l.tlsIdleDue(c); ok && (!set || before(d, at)) {
			at, set = d, true
		}
		if s.pingTicks > 0 {
			p := l.pingDue(c)
			if c.flags&fPingOut != 0 {
				p = c.mark + s.pongTicks
			}
			if !set || before(p, at) {
				at = p
			}
		}
		l.schedule(c, at)
	case stClosing, stLinger:
		l.schedule(c, c.mark)
	case stFlushing:
		l.schedule(c, l.now+1)
	}
}

// fire handles c's expired timer. Every live connection keeps a timer: when
// the step taken did not schedule one, fire re-arms c from its state.
func (l *evloop) fire(c *conn) {
	switch c.phase() {
	case stHead:
		switch {
		case l.srv.hsTicks == 0 || before(l.now, c.mark):
		case before(l.now, c.mark+l.srv.hsTicks) && l.unread(c):
			// More of the head arrived and waits for a loop that is behind:
			// judge it once read, within a second handshake timeout at most.
			l.postpone(c)
		case c.tlsSt() != nil && !c.tlsSt().ready:
			// Still in its TLS handshake: no HTTP answer can be sent.
			l.stats.HandshakeTimeouts.Add(1)
			if c.flags&fProxy != 0 {
				c.tlsEnded = true // an incomplete PROXY header
			}
			l.tlsFailed(c, TLSFailTimeout)
			l.hardClose(c)
		case c.flags&fServed != 0 && c.inBuffered() == 0:
			// An idle keep-alive connection ends without a word.
			l.beginLinger(c)
		case c.flags&fProxy != 0:
			// No complete PROXY header: the peer gets no HTTP answer.
			l.stats.HandshakeTimeouts.Add(1)
			l.beginLinger(c)
		default:
			l.stats.HandshakeTimeouts.Add(1)
			l.respondError(c, errTimeout)
		}
	case stWait:
		if l.srv.hsTicks != 0 && !before(l.now, c.mark) {
			l.stats.HandshakeTimeouts.Add(1)
			l.waitExpired(c, errTimeout)
		}
	case stOpen:
		l.tlsIdleCheck(c)
		l.checkOpen(c)
	case stClosing:
		if c.flags&(fCloseSent|fWait) == 0 {
			// The close frame is still queued by another goroutine.
			c.flags |= fWait
			c.mark = l.now + l.srv.closeTicks
		} else if !before(l.now, c.mark) {
			l.stats.CloseTimeouts.Add(1)
			if c.why == whyNone && l.perrs[c] == nil {
				c.why = whyCloseTimeout
			}
			l.hardClose(c)
		}
	case stFlushing:
		if l.flushed(c) {
			l.shutdownWrite(c)
		} else if !before(l.now, c.mark) {
			l.stats.CloseTimeouts.Add(1)
			l.hardClose(c)
		}
	case stLinger:
		if !before(l.now, c.mark) {
			l.hardClose(c)
		}
	}
	if c.tslot < 0 && c.phase() != stClosed {
		l.arm(c)
	}
}

// checkOpen applies the idle timeout and the ping/pong deadline to an open
// connection. Any inbound byte counts as a sign of life, the pong included,
// and so does input that arrived but was not read yet: a loop that fell
// behind (a long task, CPU contention) must not judge its connections on
// input it did not look at. Such a deadline is put off until the bytes are
// read, one tick at a time.
func (l *evloop) checkOpen(c *conn) {
	s := l.srv
	idle := s.idleTicks > 0 && !before(l.now, c.lastRead+s.idleTicks)
	pong := false
	if s.pingTicks > 0 && c.flags&fPingOut != 0 {
		if !before(c.lastRead, c.mark) {
			c.flags &^= fPingOut
		} else {
			pong = !before(l.now, c.mark+s.pongTicks)
		}
	}
	if (idle || pong) && l.unread(c) {
		l.postpone(c)
		return
	}
	if idle {
		l.stats.IdleTimeouts.Add(1)
		l.startClose(c, ws.StatusGoingAway, "idle timeout", whyIdle)
		return
	}
	if pong {
		l.stats.PongTimeouts.Add(1)
		l.pongClose(c)
		return
	}
	if s.pingTicks > 0 && c.flags&fPingOut == 0 && !c.stream() && !before(l.now, l.pingDue(c)) {
		l.writeFrame(c, ws.OpPing, 0, nil)
		l.stats.PingsSent.Add(1)
		c.mark = l.now
		c.flags |= fPingOut
	}
}

// unread reports whether input waits in c's socket that the loop has not
// read yet, and counts the deadline it puts off. It costs an ioctl(2), made
// only when a deadline is due.
func (l *evloop) unread(c *conn) bool {
	if unreadBytes(c.gc.Fd()) == 0 {
		return false
	}
	l.stats.DeadlinesDeferred.Add(1)
	return true
}

// deferStep is how long a deadline put off for unread input waits before
// it is judged again.
const deferStep = time.Second

// postpone re-arms c, whose due deadline waits for unread input, to be
// judged again deferTicks later: often enough that a connection is not
// kept long after its input was read, seldom enough that a loop far behind
// does not spend its time asking every socket again at every tick.
func (l *evloop) postpone(c *conn) {
	l.schedule(c, l.now+l.srv.deferTicks)
}

// pingDue is the tick at which an open connection, silent since
// c.lastRead, is pinged: PingInterval after its last input, less a jitter
// of up to a quarter of the interval, drawn anew for every quiet spell
// from the connection's id and the tick of its last input (nothing is
// stored). Connections opened in one burst would otherwise ping in one
// burst at every interval, forever; jittered, their phases drift apart.
// Pings only come early, never late, so a load balancer's idle timeout set
// above PingInterval is still never reached.
func (l *evloop) pingDue(c *conn) uint32 {
	s := l.srv
	return c.lastRead + s.pingTicks - pingJitter(c.id.Load(), c.lastRead, s.pingTicks)
}

// pingJitter returns a pseudo-random number of ticks in [0, interval/4]
// (a SplitMix64 step over id and last).
func pingJitter(id uint64, last, interval uint32) uint32 {
	span := uint64(interval / 4)
	if span == 0 {
		return 0
	}
	h := id + uint64(last)*0x9e3779b97f4a7c15
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	h ^= h >> 31
	return uint32(h % (span + 1))
}

// pongClose drops c for a missing pong. It first writes a close frame (1001,
// "pong timeout") when the socket can take it at once (nothing queued for c
// by other goroutines, an empty outbound buffer), so that the client can
// tell the gateway's policy from a crash; it does not wait for an answer
// from a peer that did not answer the ping either.
func (l *evloop) pongClose(c *conn) {
	c.why = whyPong
	if c.leaveOpen(stClosing) {
		l.fence()
		if c.pending.Load() == 0 && c.gc.OutboundBuffered() == 0 {
			l.write(c, frame.AppendClose(l.ctl[:0], ws.StatusGoingAway, "pong timeout"))
			c.flags |= fCloseSent
			c.code = ws.StatusGoingAway
		}
	}
	l.hardClose(c)
}
