//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"math"

	"github.com/panjf2000/gnet/v2"

	"github.com/upgate/upgate/parser"
)

// wsProtocols is the Upgrade list the server supports. Read-only.
var wsProtocols = []parser.Protocol{parser.WebSocket()}

var (
	errDraining = &parser.Error{Status: 503, Reason: "loop: server shutting down", Body: "The server is shutting down."}
	errBadHead  = &parser.Error{Status: 400, Reason: "loop: malformed request", Body: "Malformed request."}
)

// Results of one request head.
const (
	headKeepAlive = iota // answered; the next request may follow
	headUpgraded         // 101 written; the rest of the input is WebSocket
	headDone             // answered; the connection is closing
	headWait             // decision deferred; the rest of the input waits for it
	headStream           // 101 written; the rest of the input is a byte stream
	headHandoff          // 101 written; the socket goes to the Handler with the rest of the input
)

// head is the read callback of a connection in the head phase. It reads
// the PROXY protocol header first when one is expected, then parses the
// bytes gnet holds (leaving an incomplete head there: the parser resumes
// where it stopped when more arrives), answers each complete request and,
// after a 101, decodes the bytes that followed the head as frames in the
// same call.
func (l *evloop) head(c *conn) gnet.Action {
	buf := c.peekIn()
	off := 0
	if c.flags&fProxy != 0 {
		n, ok := l.proxyHeader(c, buf)
		if !ok {
			return gnet.None
		}
		off = n // the head follows in the same bytes, if it arrived
	}
	for off < len(buf) {
		if c.req == nil {
			c.req = l.getReq()
		}
		n, err := c.req.Parse(buf[off:])
		if err == parser.ErrNeedMore {
			break
		}
		if err != nil {
			pe, ok := err.(*parser.Error)
			if !ok {
				pe = errBadHead
			}
			l.respondError(c, pe)
			c.discardIn(len(buf))
			return gnet.None
		}
		switch l.request(c) {
		case headUpgraded:
			return l.websocket(c, buf, off+n)
		case headStream:
			return l.stream(c, buf, off+n)
		case headHandoff:
			l.handoff(c, buf[off+n:])
			return gnet.Close
		case headDone:
			c.discardIn(len(buf))
			return gnet.None
		case headWait:
			// The head is consumed; what follows it stays in gnet's
			// buffer until the decision comes.
			l.putReq(c.req)
			c.req = nil
			c.discardIn(off + n)
			l.waitTraffic(c)
			return gnet.None
		}
		off += n
		l.putReq(c.req)
		c.req = nil
	}
	if off > 0 {
		c.discardIn(off)
	}
	return gnet.None
}

// proxyHeader reads the PROXY protocol header at the start of buf and
// returns its length, ok once it is complete. Until then the bytes stay in
// gnet's buffer and the header is parsed again from the start when more
// arrive (it is at most parser.ProxyV2MaxLen bytes long); the handshake
// timeout bounds the wait. A connection that does not start with a valid
// header is closed without a response: the peer is not the proxy the
// server was configured for, and must not be answered as if it were.
func (l *evloop) proxyHeader(c *conn, buf []byte) (int, bool) {
	h := &l.proxy
	n, err := parser.ParseProxy(buf, h)
	if err == parser.ErrNeedMore && len(buf) < parser.ProxyV2MaxLen {
		return 0, false
	}
	if err != nil {
		l.stats.ProxyErrors.Add(1)
		c.discardIn(len(buf))
		l.beginLinger(c)
		return 0, false
	}
	c.flags &^= fProxy
	if !h.Local && h.Src.IsValid() {
		c.setProxied(h.Src)
	}
	*h = parser.ProxyHeader{}
	return n, true
}

// request answers the complete head in c.req.
func (l *evloop) request(c *conn) int {
	r := c.req
	s := l.srv
	if s.draining.Load() {
		l.respondError(c, errDraining)
		return headDone
	}
	isWS := false
	var wsErr *parser.Error
	if idx, _ := r.SelectUpgrade(wsProtocols); idx == 0 {
		if err := r.CheckWebSocket(&l.accept); err != nil {
			pe, ok := err.(*parser.Error)
			if !ok {
				pe = errBadHead
			}
			if s.sh == nil && s.hh == nil {
				l.respondError(c, pe)
				return headDone
			}
			wsErr = pe // another protocol of the list may still be chosen
		} else {
			isWS = true
		}
	}

	d := &l.dec
	d.reset()
	l.req = Request{Head: r, Conn: c.handle(), WebSocket: isWS, WebSocketErr: wsErr}
	l.depth++
	s.h.OnRequest(&l.req, d)
	l.leave()
	l.req = Request{}
	if c.phase() != stHead {
		return headDone // closed under the handler's feet
	}

	switch d.Action {
	case ActUpgrade:
		if !isWS {
			if wsErr != nil {
				l.respondError(c, wsErr)
				return headDone
			}
			break
		}
		if d.Handoff && !l.canHandoff(c, d) {
			return headDone
		}
		if !l.switching(c, &l.accept, d) {
			return headDone
		}
		if d.Handoff {
			l.stats.HandshakesOK.Add(1)
			return headHandoff
		}
		l.opened(c, d.MaxMessage)
		return headUpgraded
	case ActSwitch:
		if !r.WantsUpgrade() {
			break
		}
		if !l.switchStream(c, d) {
			return headDone
		}
		if d.Handoff {
			return headHandoff
		}
		return headStream
	case ActRespond:
		keep := r.KeepAlive() && !r.HasBody()
		status := d.Status
		if status == 0 {
			status = 200
		}
		if string(r.Method()) == "HEAD" {
			// The head AppendResponse would give, with the body's real
			// Content-Length and no content (RFC 9110 §9.3.2): a body
			// here would be read as the start of the next response.
			l.resp = parser.AppendHeadResponse(l.resp[:0], status, d.Header, d.ContentType, len(d.Body), keep)
		} else {
			l.resp = parser.AppendResponse(l.resp[:0], status, d.Header, d.ContentType, d.Body, keep)
		}
		l.write(c, l.resp)
		l.trimResp()
		l.stats.HTTPResponses.Add(1)
		if !keep {
			l.beginLinger(c)
			return headDone
		}
		c.flags |= fServed
		c.mark = l.tickNow() + s.hsTicks
		l.arm(c)
		return headKeepAlive
	case ActReject:
		l.reject(c, d)
		return headDone
	case ActDefer:
		if !isWS && !r.WantsUpgrade() {
			l.respondError(c, errDeferPlain)
			return headDone
		}
		l.startWait(c, isWS)
		return headWait
	}
	// ActRequireUpgrade, or ActUpgrade of a request that is not a
	// WebSocket handshake, or ActSwitch of one that asks for no upgrade.
	l.resp = parser.AppendUpgradeRequired(l.resp[:0], d.Protocols)
	l.write(c, l.resp)
	l.stats.reject(426)
	l.beginLinger(c)
	return headDone
}

// reject answers d's error status (404 when none; 500 for an ActDefer
// that cannot be honoured) with d.Reason as the body (the status's phrase
// when empty) and closes c once it is written.
func (l *evloop) reject(c *conn, d *Decision) {
	if d.Action == ActDefer {
		l.respondError(c, errDeferPlain)
		return
	}
	l.perr = parser.Error{Status: d.Status, Reason: d.Reason, Body: d.Reason, Header: d.Header}
	if l.perr.Status == 0 {
		l.perr.Status = 404
	}
	l.respondError(c, &l.perr)
	l.perr = parser.Error{}
	l.trimResp()
}

// trimResp drops a response buffer grown past what a loop keeps.
func (l *evloop) trimResp() {
	if cap(l.resp) > respKeep {
		l.resp = nil
	}
}

// opened makes c a WebSocket connection once its 101 is written.
func (l *evloop) opened(c *conn, maxMessage int64) {
	if maxMessage <= 0 {
		maxMessage = l.srv.opts.MaxMessage
	}
	c.maxMsg = uint32(min(maxMessage, math.MaxUint32))
	l.stats.HandshakesOK.Add(1)
	l.enterOpen(c)
	l.depth++
	l.srv.h.OnOpen(c.handle())
	l.leave()
}

// enterOpen moves c, whose 101 is written, to the open phase: a WebSocket
// or a stream (xfStream set before).
func (l *evloop) enterOpen(c *conn) {
	if c.req != nil { // nil after a deferred decision
		l.putReq(c.req)
		c.req = nil
	}
	c.mark = 0
	c.lastRead = l.stamp()
	c.flags |= fUpgraded
	c.setPhase(stOpen)
	l.stats.WebSocketsOpen.Add(1)
	l.arm(c)
}
