//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/loop/frame"
	"github.com/upgate/upgate/parser"
)

// Write path sizes.
const (
	// batchMax is the most bytes coalesced for the connection whose read
	// callback is running before they are written.
	batchMax = 32 << 10
	// copyMax is the largest frame copied next to its header for a single
	// write(2); larger payloads go out with writev(2), which costs an
	// allocation in x/sys/unix but no copy.
	copyMax = 64 << 10
	// respKeep is the largest response buffer a loop keeps between requests.
	respKeep = 64 << 10
)

// Free list bounds: what a loop keeps for reuse after a burst.
const (
	maxFreeRequests = 1024
	maxFreeParts    = 4096
)

// partial is the decoding state of a connection in the middle of a frame or
// of a fragmented message. Idle connections have none: it comes from the
// loop's free list when needed and goes back when the connection is at a
// frame boundary again.
type partial struct {
	dec frame.Decoder
	// in holds unread input copied out of gnet's buffer when a frame is
	// incomplete at the end of a read callback, nil otherwise. gnet may hand
	// the next callback a copy of its ring buffer, in which the decoder's
	// in-place unmasking would be lost; an own buffer keeps the decoder's
	// contract (the same unread bytes, as it left them).
	in *bytebufferpool.ByteBuffer
}

// evloop is the state of one gnet event loop: its timers, free lists and
// write buffers. Only its loop goroutine touches it, except in, bound,
// tickQueued and stats. The Server makes one per loop it expects at New;
// each is bound to a gnet loop the first time that loop is seen (bind).
type evloop struct {
	srv   *Server
	el    gnet.EventLoop // set once, before bound
	bound atomic.Bool    // el is set: the loop runs
	idx   int            // index in Server.loops, Conn.LoopIndex
	stats Stats

	in            inbox         // work from other goroutines (inbox.go)
	run           []inboxOp     // the inbox work being run; loop goroutine only
	inboxRunnable gnet.Runnable // inboxTask, bound once

	tickQueued atomic.Bool
	tickAt     atomic.Int64         // when the ticker queued the pending Run (Server.since)
	lagLogged  int64                // when the loop last logged its lag (Server.since)
	now        uint32               // current tick
	lists      [wheelSize + 1]*conn // timing wheel slots, then the work list

	reqs  []*parser.Request
	parts []*partial
	free  []*conn // conns of closed connections, for reuse (pool.go)

	// perrs holds the protocol violation of each connection that
	// committed one, from the moment it is found until the connection's
	// OnClose: rare, so not a field of every Conn.
	perrs map[*conn]*frame.ProtocolError

	cur    *conn  // connection whose read callback is running
	batch  []byte // frames for cur not yet written
	wbuf   []byte // scratch for a frame written at once
	tlsBuf []byte // scratch for records sealed (tls13.go)
	// plainSpare is the plaintext buffer lent to the next TLS read
	// callback (getPlain).
	plainSpare *bytebufferpool.ByteBuffer
	zl         deflate.Loop // permessage-deflate codecs (compression.go)
	zin        []byte       // a message inflated for OnMessage
	zout       []byte       // a message compressed by Write
	ext        []byte       // the Sec-WebSocket-Extensions value of a 101
	hdr        [frame.MaxHeaderLen]byte
	iov        [2][]byte
	ctl        [frame.MaxServerHeaderLen + ws.MaxControlFramePayloadSize]byte // a close frame

	// Handler calls in progress, and the OnClose calls waiting for them to
	// return: gnet closes a connection inside a write that fails, which
	// may happen in a Send made by a Handler method, and OnClose must not
	// run nested in another Handler call.
	depth    int
	deferred []closeReport

	resp   []byte
	accept [parser.AcceptLen]byte
	req    Request
	dec    Decision
	perr   parser.Error
	proxy  parser.ProxyHeader

	waiting map[*conn]*waitState // connections in stWait
}

func newEvloop(s *Server, idx int) *evloop {
	l := &evloop{srv: s, idx: idx}
	l.inboxRunnable = gnet.RunnableFunc(l.inboxTask)
	return l
}

// bind attaches l to gnet's loop el, on that loop's goroutine, the first
// time the server sees el. Work queued in l's inbox before (Execute before
// any connection) runs on the loop's next turn. Under Server.mu.
func (l *evloop) bind(el gnet.EventLoop) {
	s := l.srv
	l.el = el
	l.now = uint32(time.Since(s.start) / s.opts.TimerResolution)
	l.batch = make([]byte, 0, batchMax)
	l.startWaker()
	l.bound.Store(true)
	in := &l.in
	in.mu.Lock()
	queued := len(in.ops) > 0 && !in.closed
	if queued {
		in.woken = true
	}
	w := in.wake
	in.mu.Unlock()
	if queued {
		l.wake(w)
	}
}

// Run advances the timing wheel; the server's ticker schedules it on the
// loop with EventLoop.Execute.
func (l *evloop) Run(context.Context) error {
	l.recordLag(l.tickAt.Load())
	l.tickQueued.Store(false)
	l.advance()
	return nil
}

func (l *evloop) getReq() *parser.Request {
	if n := len(l.reqs); n > 0 {
		r := l.reqs[n-1]
		l.reqs = l.reqs[:n-1]
		return r
	}
	return parser.NewRequest(l.srv.opts.Head)
}

func (l *evloop) putReq(r *parser.Request) {
	if len(l.reqs) < maxFreeRequests {
		r.Reset()
		l.reqs = append(l.reqs, r)
	}
}

func (l *evloop) getPart(c *conn) *partial {
	var p *partial
	if n := len(l.parts); n > 0 {
		p = l.parts[n-1]
		l.parts = l.parts[:n-1]
	} else {
		p = new(partial)
	}
	lim := frame.Limits{MaxMessage: int64(c.maxMsg)}
	if a := c.agreement(); a.on() {
		lim.AllowedRSV = rsv1 // RFC 7692 §6
	}
	p.dec.Init(lim)
	return p
}

func (l *evloop) putPart(p *partial) {
	p.dec.Release()
	if p.in != nil {
		bytebufferpool.Put(p.in)
		p.in = nil
	}
	if len(l.parts) < maxFreeParts {
		l.parts = append(l.parts, p)
	}
}

// releaseAux gives c's parser and decoder state back to the free lists.
func (l *evloop) releaseAux(c *conn) {
	if c.req != nil {
		l.putReq(c.req)
		c.req = nil
	}
	if c.part != nil {
		l.putPart(c.part)
		c.part = nil
	}
}

// closeReport is a Handler.OnClose call waiting for the current Handler
// call to return.
type closeReport struct {
	c    *conn
	code ws.StatusCode
	err  error
}

// reportClose calls Handler.OnClose now, or after the Handler call in
// progress returns.
func (l *evloop) reportClose(c *conn, code ws.StatusCode, err error) {
	if l.depth > 0 {
		c.hold |= hReport
		l.deferred = append(l.deferred, closeReport{c, code, err})
		return
	}
	l.depth++
	l.onClose(c, code, err)
	l.leave()
}

// onClose reports the end of c to the Handler: OnStreamClose for a stream,
// else OnClose.
func (l *evloop) onClose(c *conn, code ws.StatusCode, err error) {
	if c.stream() {
		l.srv.sh.OnStreamClose(c.handle(), err)
		return
	}
	l.srv.h.OnClose(c.handle(), code, err)
}

// leave ends a Handler call and, back at the outermost level, makes the
// OnClose calls that waited for it (which may defer more).
func (l *evloop) leave() {
	l.depth--
	if l.depth > 0 {
		return
	}
	for i := 0; i < len(l.deferred); i++ {
		r := l.deferred[i]
		l.deferred[i] = closeReport{}
		l.depth++
		l.onClose(r.c, r.code, r.err)
		l.depth--
		r.c.hold &^= hReport
		l.recycle(r.c)
	}
	l.deferred = l.deferred[:0]
}

// flush writes the batch of the current connection.
func (l *evloop) flush() {
	if len(l.batch) == 0 {
		return
	}
	b := l.batch
	l.batch = l.batch[:0]
	if c := l.cur; c != nil && c.phase() != stClosed {
		// gnet writes what the socket takes and copies the rest into the
		// connection's outbound buffer: the batch is free again after.
		l.out(c, b)
	}
}

// write writes raw bytes (a response or an encoded frame) to c in order
// with what was written before.
func (l *evloop) write(c *conn, b []byte) {
	if c == l.cur {
		if len(b) <= batchMax {
			if len(l.batch)+len(b) > batchMax {
				l.flush()
			}
			l.batch = append(l.batch, b...)
			return
		}
		l.flush()
	}
	if c.phase() != stClosed {
		l.out(c, b)
	}
}

// writeFrame encodes and writes one frame to c: into the batch when c's read
// callback is running, else with one write(2) or writev(2). b0 holds bits
// set in the frame's first byte besides FIN and the opcode (RSV1 for a
// compressed message).
func (l *evloop) writeFrame(c *conn, op ws.OpCode, b0 byte, payload []byte) {
	size := frame.HeaderLen(len(payload)) + len(payload)
	if c == l.cur {
		if size <= batchMax {
			if len(l.batch)+size > batchMax {
				l.flush()
			}
			at := len(l.batch)
			l.batch = frame.AppendFrame(l.batch, op, true, payload)
			l.batch[at] |= b0
			return
		}
		l.flush()
	}
	if c.phase() == stClosed {
		return
	}
	if size <= copyMax {
		l.wbuf = frame.AppendFrame(l.wbuf[:0], op, true, payload)
		l.wbuf[0] |= b0
		l.out(c, l.wbuf)
		return
	}
	n := frame.PutHeader(&l.hdr, op, true, len(payload))
	l.hdr[0] |= b0
	l.iov[0], l.iov[1] = l.hdr[:n], payload
	l.outv(c, l.iov[:])
	l.iov[0], l.iov[1] = nil, nil
}

// overQueue reports whether c's outbound queue is over the bound.
func (l *evloop) overQueue(c *conn) bool {
	return c.gc.OutboundBuffered()+int(c.pending.Load()) > l.srv.opts.MaxOutbound
}

// send is Conn.Send on the loop goroutine.
func (l *evloop) send(c *conn, op ws.OpCode, payload []byte) error {
	if err := c.openErr(); err != nil {
		return err
	}
	if l.overQueue(c) {
		l.slowConsumer(c)
		return ErrSlowConsumer
	}
	if a := c.agreement(); a.compresses(op, len(payload)) {
		z, err := l.compress(c, payload)
		if err != nil {
			return err
		}
		l.writeFrame(c, op, b0rsv1, z)
		l.trimCompress()
	} else {
		l.writeFrame(c, op, 0, payload)
	}
	if op == ws.OpText || op == ws.OpBinary {
		l.stats.MessagesOut.Add(1)
		l.stats.BytesOut.Add(uint64(len(payload)))
	}
	return nil
}

// sendFrame is Conn.SendFrame on the loop goroutine.
func (l *evloop) sendFrame(c *conn, b []byte) error {
	if err := c.openErr(); err != nil {
		return err
	}
	if l.overQueue(c) {
		l.slowConsumer(c)
		return ErrSlowConsumer
	}
	l.write(c, b)
	l.countFrame(b)
	return nil
}

// countFrame counts the data frames of b, one or more encoded frames sent
// with SendFrame.
func (l *evloop) countFrame(b []byte) {
	for len(b) > 0 {
		h, n, err := frame.ParseHeader(b)
		if err != nil || h.Length > int64(len(b)-n) {
			return
		}
		if h.OpCode == ws.OpText || h.OpCode == ws.OpBinary || h.OpCode == ws.OpContinuation {
			if h.OpCode != ws.OpContinuation {
				l.stats.MessagesOut.Add(1)
			}
			l.stats.BytesOut.Add(uint64(h.Length))
		}
		b = b[n+int(h.Length):]
	}
}

// slowConsumer closes c with 1008 because its outbound queue is full.
func (l *evloop) slowConsumer(c *conn) {
	if c.phase() != stOpen {
		return
	}
	l.stats.SlowConsumers.Add(1)
	l.startClose(c, ws.StatusPolicyViolation, "slow consumer", whySlow)
}
