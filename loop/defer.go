//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"github.com/upgate/upgate/parser"
)

// Deferred decisions. A Handler that answers a WebSocket handshake with
// Decision.Defer leaves the connection in stWait: the head is consumed, the
// bytes that follow it stay in gnet's inbound buffer, unparsed, and the loop
// serves its other connections. Conn.Resolve later runs the Handler's
// decision on the loop (Server.Execute), which writes the 101 and decodes
// the kept bytes as frames, or writes the refusal. The handshake timer keeps
// running meanwhile (408), and the server's drain answers 503.

var (
	errDeferPlain = &parser.Error{Status: 500, Reason: "loop: decision deferred for a request that is not a WebSocket handshake", Body: "The server could not answer this request."}
	errWaitInput  = &parser.Error{Status: 400, Reason: "loop: too much data before the handshake was answered", Body: "Too much data sent before the handshake was answered."}
)

// waitState is what a waiting connection needs to complete its handshake.
// A loop keeps them in a map by connection: only waiting connections pay.
type waitState struct {
	accept [parser.AcceptLen]byte
	ws     bool // the request was a valid WebSocket handshake
}

// startWait moves c, whose head OnRequest deferred, to stWait.
func (l *evloop) startWait(c *conn, ws bool) {
	if l.waiting == nil {
		l.waiting = make(map[*conn]*waitState)
	}
	l.waiting[c] = &waitState{accept: l.accept, ws: ws}
	c.setPhase(stWait)
	l.stats.Deferred.Add(1)
	l.stats.Waiting.Add(1)
}

// endWait forgets c's waiting state (the decision came, or c is ending).
func (l *evloop) endWait(c *conn) *waitState {
	w := l.waiting[c]
	if w != nil {
		delete(l.waiting, c)
		l.stats.Waiting.Add(-1)
	}
	return w
}

// waitTraffic is the read callback of a waiting connection: the bytes stay
// in gnet's buffer for after the 101, up to MaxWaitInput.
func (l *evloop) waitTraffic(c *conn) {
	if c.inBuffered() > MaxWaitInput {
		l.endWait(c)
		l.respondError(c, errWaitInput)
		c.discardIn(c.inBuffered())
	}
}

// waitExpired answers a waiting connection whose handshake time ran out,
// or that the drain ends.
func (l *evloop) waitExpired(c *conn, e *parser.Error) {
	l.endWait(c)
	l.respondError(c, e)
	c.discardIn(c.inBuffered())
}

// Resolve gives the decision a Handler put off with Decision.Defer. Any
// goroutine; it does not wait. decide runs once, on the connection's event
// loop, and must not block:
//
//   - with ok true and a reset d while the handshake still waits: decide
//     fills d as OnRequest would (Upgrade, Reject, Respond, RequireUpgrade;
//     a Respond is followed by the end of the connection), and may call
//     SetContext. An Upgrade writes the 101, calls Handler.OnOpen, then
//     delivers the frames that arrived meanwhile. A d left zero answers 404.
//   - with ok false and d nil when it no longer waits: the handshake timeout
//     answered 408, the client went away or sent too much, the server is
//     draining, Resolve was already called. Nothing is written.
//
// Once the server has stopped, decide runs on the caller's goroutine, with
// ok false. The slices decide puts in d must stay valid until it returns.
func (h Conn) Resolve(decide func(d *Decision, ok bool)) {
	c := h.c
	if c == nil {
		decide(nil, false)
		return
	}
	l, id := c.l, h.id
	if l.srv.Execute(l.idx, func() { l.resume(c, id, decide) }) != nil {
		decide(nil, false)
	}
}

// requireUpgrade answers 426 naming d.Protocols (WebSocket when empty) and
// closes c once it is written.
func (l *evloop) requireUpgrade(c *conn, d *Decision) {
	l.resp = parser.AppendUpgradeRequired(l.resp[:0], d.Protocols)
	l.write(c, l.resp)
	l.stats.reject(426)
	l.beginLinger(c)
}

// resume runs a deferred decision on c's loop (a task of Execute: the
// Handler-call depth is already raised).
func (l *evloop) resume(c *conn, id uint64, decide func(*Decision, bool)) {
	w := l.waiting[c]
	if w == nil || c.phase() != stWait || c.id.Load() != id {
		decide(nil, false)
		return
	}
	l.endWait(c)
	d := &l.dec
	d.reset()
	decide(d, true)
	if c.phase() != stWait {
		return // ended under the Handler's feet
	}
	c.setPhase(stHead)
	prev := l.cur
	if prev != nil {
		l.flush()
	}
	l.cur = c
	switch d.Action {
	case ActUpgrade:
		if !w.ws {
			l.requireUpgrade(c, d)
			break
		}
		if d.Handoff && !l.canHandoff(c, d) {
			break
		}
		if !l.switching(c, &w.accept, d) {
			break
		}
		if d.Handoff {
			l.stats.HandshakesOK.Add(1)
			l.handoff(c, c.peekIn())
			l.hardClose(c)
			break
		}
		l.opened(c, d.MaxMessage)
		if c.phase() == stOpen || c.phase() == stClosing {
			buf := c.peekIn()
			if len(buf) > 0 {
				l.websocket(c, buf, 0)
			}
		}
	case ActSwitch:
		// The request asked for an upgrade: only such requests wait.
		if !l.switchStream(c, d) {
			break
		}
		if d.Handoff {
			l.handoff(c, c.peekIn())
			l.hardClose(c)
			break
		}
		if buf := c.peekIn(); len(buf) > 0 && c.phase() == stOpen {
			l.stream(c, buf, 0)
		}
	case ActRespond:
		status := d.Status
		if status == 0 {
			status = 200
		}
		l.resp = parser.AppendResponse(l.resp[:0], status, d.Header, d.ContentType, d.Body, false)
		l.write(c, l.resp)
		l.trimResp()
		l.stats.HTTPResponses.Add(1)
		l.beginLinger(c)
	case ActRequireUpgrade:
		l.requireUpgrade(c, d)
	default: // ActReject, or ActDefer again, which cannot be honoured
		l.reject(c, d)
	}
	if st := c.phase(); st != stOpen && st != stClosing && st != stClosed {
		c.discardIn(c.inBuffered())
	}
	l.flush()
	l.cur = prev
	switch c.phase() {
	case stClosed:
		l.releaseAux(c)
		l.recycle(c)
	case stFlushing, stLinger:
		l.releaseAux(c)
	}
}
