//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"github.com/gobwas/ws"
	"github.com/valyala/bytebufferpool"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/loop/frame"
	"github.com/upgate/upgate/loop/tlsrec"
	"github.com/upgate/upgate/parser"
)

// startClose begins a server-initiated close handshake on the loop: it sends
// a close frame and waits up to CloseTimeout for the peer's. It does nothing
// when c is no longer open (another goroutine may have begun closing). A
// stream ends with the linger once what was queued for it is written.
func (l *evloop) startClose(c *conn, code ws.StatusCode, reason string, why uint8) {
	if !c.leaveOpen(stClosing) {
		return
	}
	if c.stream() {
		l.writeLast(c, nil, true, code, why)
		return
	}
	l.writeLast(c, frame.AppendClose(l.ctl[:0], code, reason), true, code, why)
}

// writeLast writes c's close frame b after every write accepted for c,
// including those other goroutines queued: directly when none is in
// flight, else queued behind them. For a close the server starts, started
// is set and closeWritten runs once b is written. c has left stOpen.
func (l *evloop) writeLast(c *conn, b []byte, started bool, code ws.StatusCode, why uint8) {
	l.fence()
	if c.pending.Load() == 0 {
		l.write(c, b)
		if started {
			l.closeWritten(c, code, why, nil)
		}
		return
	}
	if c == l.cur {
		l.flush()
	}
	buf := bytebufferpool.Get()
	buf.B = append(buf.B[:0], b...)
	l.postLast(c, c.id.Load(), buf, started, code, why)
}

// postLast queues c's close frame in buf behind the writes queued for c in
// the inbox; for a close the server starts (started), closeWritten runs
// once it is written. Any goroutine; c holds connection id and has left
// stOpen.
func (l *evloop) postLast(c *conn, id uint64, buf *bytebufferpool.ByteBuffer, started bool, code ws.StatusCode, why uint8) {
	o := inboxOp{kind: opSend, c: c, id: id, buf: buf, n: int32(len(buf.B))}
	if started {
		o.kind, o.code, o.why = opClose, code, why
	}
	c.pending.Add(o.n)
	if !l.post(o) {
		o.release(false)
	}
}

// closeWritten runs on the loop once the server's close frame is written
// (directly, or from the loop's inbox).
func (l *evloop) closeWritten(c *conn, code ws.StatusCode, why uint8, err error) {
	if c.phase() != stClosing {
		return
	}
	c.code = code
	if c.why == whyNone {
		c.why = why
	}
	if err != nil {
		return // the write failed: gnet is closing the connection
	}
	if c.stream() {
		// A stream has no close frame: what was queued is out, so it ends
		// with the linger (FIN once flushed).
		l.beginLinger(c)
		return
	}
	c.flags |= fCloseSent
	if c.flags&fPeerClose != 0 {
		l.beginLinger(c)
		return
	}
	c.mark = l.tickNow() + l.srv.closeTicks
	l.schedule(c, c.mark)
}

// peerClose handles the peer's close frame.
func (l *evloop) peerClose(c *conn, code ws.StatusCode) {
	c.flags |= fPeerClose
	if c.leaveOpen(stClosing) {
		// The peer started the handshake: echo its code (§5.5.1), or 1000
		// when its frame had none, then close TCP once written (§7.1.1).
		c.code = code
		reply := code
		if reply == ws.StatusNoStatusRcvd {
			reply = ws.StatusNormalClosure
		}
		l.writeLast(c, frame.AppendClose(l.ctl[:0], reply, ""), false, 0, whyNone)
		c.flags |= fCloseSent
		l.beginLinger(c)
		return
	}
	if c.flags&fCloseSent != 0 {
		// Our close frame was answered: the handshake is complete.
		l.beginLinger(c)
	}
	// Otherwise our close frame is still queued by another goroutine;
	// closeWritten finishes the handshake.
}

// protocolError fails the connection (§7.1.7): a close frame with the
// codec's code (1002, 1007 or 1009), then TCP close once written.
func (l *evloop) protocolError(c *conn, err error) {
	l.stats.ProtocolErrors.Add(1)
	code := frame.CodeOf(err)
	if code == 0 {
		code = ws.StatusProtocolError
	}
	pe, ok := err.(*frame.ProtocolError)
	if !ok {
		pe = &frame.ProtocolError{Code: code, Reason: err.Error()}
	}
	if c.leaveOpen(stClosing) {
		l.writeLast(c, frame.AppendClose(l.ctl[:0], code, pe.Reason), false, 0, whyNone)
		c.flags |= fCloseSent
		c.code = code
	}
	if l.perrs == nil {
		l.perrs = make(map[*conn]*frame.ProtocolError)
	}
	l.perrs[c] = pe // until OnClose (events.OnClose)
	l.beginLinger(c)
}

// respondError writes an error response for a request head and closes the
// connection once it is written.
func (l *evloop) respondError(c *conn, e *parser.Error) {
	l.resp = parser.AppendError(l.resp[:0], e)
	l.write(c, l.resp)
	l.stats.reject(e.Status)
	l.beginLinger(c)
}

// beginLinger ends c after its last bytes: once the outbound buffer is
// empty and no queued write is in flight, the write side is shut down (the peer reads everything, then EOF),
// input is discarded until the peer closes, and CloseTimeout bounds it all.
// Shutting down the write side instead of closing avoids the reset a close
// with unread input causes, which can destroy a response the peer has not
// read yet.
func (l *evloop) beginLinger(c *conn) {
	if c == l.cur {
		l.flush()
	}
	st := c.phase()
	if st == stClosed || st == stFlushing || st == stLinger {
		return
	}
	c.setPhase(stFlushing)
	c.mark = l.tickNow() + l.srv.closeTicks
	if c != l.cur {
		l.releaseAux(c)
	}
	if l.flushed(c) {
		l.shutdownWrite(c)
		return
	}
	l.schedule(c, l.now+1)
}

// flushed reports whether everything written or queued for c has left.
func (l *evloop) flushed(c *conn) bool {
	return c.pending.Load() == 0 && c.gc.OutboundBuffered() == 0
}

// shutdownWrite sends FIN after the last byte and waits for the peer's.
func (l *evloop) shutdownWrite(c *conn) {
	c.setPhase(stLinger)
	if st := c.tlsSt(); st != nil && st.rec != nil {
		l.recAlert(c, st, tlsrec.AlertCloseNotify) // before the FIN
	} else if st != nil && st.ready {
		_ = st.conn.CloseWrite() // close_notify, before the FIN
	}
	if err := unix.Shutdown(c.gc.Fd(), unix.SHUT_WR); err != nil {
		l.hardClose(c)
		return
	}
	l.schedule(c, c.mark)
}

// hardClose closes the TCP connection now; gnet writes what the socket takes
// of the outbound buffer first and calls OnClose before returning. Inside
// c's own read callback OnClose leaves the callback's buffers alone and the
// callback returns gnet.Close.
func (l *evloop) hardClose(c *conn) {
	if c.phase() == stClosed {
		return
	}
	_ = l.el.Close(c.gc)
}
