package loop

import (
	"time"

	"github.com/gobwas/ws"

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

func (l *evloop) link(c *Conn, at uint32) {
	i := int16(at & wheelMask)
	c.tat, c.tslot = at, i
	c.tprev = nil
	c.tnext = l.lists[i]
	if c.tnext != nil {
		c.tnext.tprev = c
	}
	l.lists[i] = c
}

func (l *evloop) unlink(c *Conn) {
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
func (l *evloop) schedule(c *Conn, at uint32) {
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
func (l *evloop) sweep(fn func(*Conn)) {
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
// bytes, rounded up so that a deadline counted from it never fires early:
// l.now only moves when the loop's timer task runs, which can wait behind
// a busy loop's other work, while the server's tick is refreshed by gnet's
// ticker goroutine. One atomic load, no clock read on the hot path.
func (l *evloop) stamp() uint32 {
	t := l.srv.tick.Load()
	if before(t, l.now) {
		t = l.now
	}
	return t + 1
}

// park is the far deadline of a connection with no timeout to watch, so
// that it stays reachable by sweep.
func (l *evloop) park() uint32 { return l.now + wheelSize - 1 }

// arm schedules c's next timer from its state.
func (l *evloop) arm(c *Conn) {
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
		if s.pingTicks > 0 {
			p := c.lastRead + s.pingTicks
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
func (l *evloop) fire(c *Conn) {
	switch c.phase() {
	case stHead:
		switch {
		case l.srv.hsTicks == 0 || before(l.now, c.mark):
		case c.flags&fServed != 0 && c.gc.InboundBuffered() == 0:
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
		l.checkOpen(c)
	case stClosing:
		if c.flags&(fCloseSent|fWait) == 0 {
			// The close frame is still queued by another goroutine.
			c.flags |= fWait
			c.mark = l.now + l.srv.closeTicks
		} else if !before(l.now, c.mark) {
			l.stats.CloseTimeouts.Add(1)
			if c.why == whyNone && c.perr == nil {
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
// connection. Any inbound byte counts as a sign of life, the pong included.
func (l *evloop) checkOpen(c *Conn) {
	s := l.srv
	if s.idleTicks > 0 && !before(l.now, c.lastRead+s.idleTicks) {
		l.stats.IdleTimeouts.Add(1)
		l.startClose(c, ws.StatusGoingAway, "idle timeout", whyIdle)
		return
	}
	if s.pingTicks == 0 {
		return
	}
	if c.flags&fPingOut != 0 {
		if !before(c.lastRead, c.mark) {
			c.flags &^= fPingOut
		} else if !before(l.now, c.mark+s.pongTicks) {
			l.stats.PongTimeouts.Add(1)
			c.why = whyPong
			l.hardClose(c)
			return
		}
	}
	if c.flags&fPingOut == 0 && !before(l.now, c.lastRead+s.pingTicks) {
		l.writeFrame(c, ws.OpPing, nil)
		l.stats.PingsSent.Add(1)
		c.mark = l.now
		c.flags |= fPingOut
	}
}
