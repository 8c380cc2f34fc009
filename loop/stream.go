//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"errors"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/upgate/upgate/parser"
)

// Byte streams. A request the Handler answers with Decision.Switch gets a
// 101 naming the protocol, and its connection becomes a byte stream: the
// loop delivers what arrives to StreamHandler.OnData and writes what
// WriteStream and SendStream are given, as they are. A stream is an open
// connection (stOpen) with xfStream set, so it shares the WebSocket
// connection's write path, outbound bound, inbox order, idle timer, drain
// and close accounting; it has no frames, pings or close handshake: its
// close is the linger (flush, FIN, wait for the peer's).
//
// A request answered with Decision.Handoff gets its 101 and is then handed
// over: the Handler gets a duplicate of the socket and the bytes behind the
// head (HandoffHandler), and the loop lets gnet close its own descriptor.

var (
	errNoStream = &parser.Error{Status: 500, Reason: "loop: switch without a StreamHandler", Body: "The server could not answer this request."}
	errHandoff  = &parser.Error{Status: 500, Reason: "loop: handoff not possible on this connection", Body: "The server could not answer this request."}
)

// Errors of the stream API.
var (
	// ErrNotStream is returned by WriteStream and SendStream on a
	// WebSocket connection.
	ErrNotStream = errors.New("loop: not a stream connection")
	// ErrStream is returned by the WebSocket write methods (Write, Send,
	// WriteFrame, SendFrame) on a stream connection.
	ErrStream = errors.New("loop: a stream connection has no frames")
)

// switchStream writes the 101 of an ActSwitch and opens c as a stream,
// unless d asks for a handoff (the caller hands c over). It reports false
// when c was answered an error instead.
func (l *evloop) switchStream(c *conn, d *Decision) bool {
	if l.srv.sh == nil && !d.Handoff || len(d.Protocol) == 0 {
		l.respondError(c, errNoStream)
		return false
	}
	if d.Handoff && !l.canHandoff(c, d) {
		return false
	}
	l.resp = parser.AppendSwitchingTo(l.resp[:0], d.Protocol)
	l.write(c, l.resp)
	l.stats.HandshakesOK.Add(1)
	if d.Handoff {
		return true
	}
	c.setKind(xfStream)
	l.stats.StreamsOpen.Add(1)
	l.stats.StreamsTotal.Add(1)
	l.enterOpen(c)
	l.depth++
	l.srv.sh.OnStreamOpen(c.handle())
	l.leave()
	return true
}

// canHandoff reports whether c may be handed over as d asks, and answers
// 500 when not: the Handler must take it, and the loop must not hold state
// the new owner would need (TLS, a compression agreement).
func (l *evloop) canHandoff(c *conn, d *Decision) bool {
	if l.srv.hh == nil || c.kind()&xfTLS != 0 || d.Compression.Enabled {
		l.respondError(c, errHandoff)
		return false
	}
	return true
}

// handoff gives c's socket to the Handler once its 101 is out, with rest,
// the bytes that followed the head. The caller then closes c on gnet's
// side: it returns gnet.Close from c's read callback, or calls hardClose
// elsewhere. A 101 still in gnet's outbound buffer (the socket's send
// buffer was full) cannot be handed over: c is then closed unanswered
// further, as a failed write would.
func (l *evloop) handoff(c *conn, rest []byte) {
	if c == l.cur {
		l.flush()
	}
	if c.req != nil {
		l.putReq(c.req)
		c.req = nil
	}
	if !l.flushed(c) {
		return
	}
	fd, err := c.gc.Dup()
	if err != nil {
		return
	}
	c.setKind(xfHandoff)
	l.stats.Handoffs.Add(1)
	l.depth++
	l.srv.hh.OnHandoff(c.handle(), fd, rest)
	l.leave()
}

// stream is the read callback of an open stream connection: it delivers
// buf[start:] to OnData and consumes buf.
func (l *evloop) stream(c *conn, buf []byte, start int) gnet.Action {
	if data := buf[start:]; len(data) > 0 && c.phase() == stOpen {
		l.stats.BytesIn.Add(uint64(len(data)))
		l.depth++
		l.srv.sh.OnData(c.handle(), data)
		l.leave()
	}
	if c.phase() == stClosed {
		return gnet.Close
	}
	c.discardIn(len(buf))
	return gnet.None
}

// WriteStream writes p to a stream connection on the loop, as it is. Loop
// goroutine only (see SendStream for other goroutines). p is written or
// copied before WriteStream returns; no allocation. It returns
// ErrNotStream on a WebSocket connection, ErrClosed once the stream is
// closing, and ErrSlowConsumer when the outbound queue is over
// Options.MaxOutbound (the stream is then closed).
func (h Conn) WriteStream(p []byte) error {
	c, err := h.onLoop()
	if err != nil {
		return err
	}
	if !c.stream() {
		return ErrNotStream
	}
	l := c.l
	if err := c.openErr(); err != nil {
		return err
	}
	if l.overQueue(c) {
		l.slowConsumer(c)
		return ErrSlowConsumer
	}
	l.write(c, p)
	l.stats.BytesOut.Add(uint64(len(p)))
	return nil
}

// SendStream writes p to a stream connection from any goroutine: p is
// copied into a pooled buffer and queued in the loop's inbox, behind the
// writes queued before it. p may be reused once SendStream returns. Errors
// are those of WriteStream, plus ErrTooLarge beyond 1 GiB; a nil error
// means p is queued: it is written unless the connection ends first.
func (h Conn) SendStream(p []byte) error {
	if h.c == nil {
		return ErrNotOpen
	}
	if !h.c.stream() {
		if h.on() == nil {
			return ErrClosed
		}
		return ErrNotStream
	}
	if len(p) > maxAsyncFrame {
		return ErrTooLarge
	}
	c, err := h.anyGoroutine()
	if err != nil {
		return err
	}
	o := inboxOp{kind: opSend, c: c, id: h.id, n: int32(len(p)), buf: bytebufferpool.Get()}
	o.buf.B = append(o.buf.B[:0], p...)
	if err := c.l.postSend(&o); err != nil {
		o.drop()
		if err == ErrSlowConsumer {
			c.slowAsync(h.id)
		}
		return err
	}
	c.l.stats.BytesOut.Add(uint64(len(p)))
	return nil
}
