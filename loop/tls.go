//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/upgate/upgate/loop/tlsrec"
)

// TLS. With Options.TLS every accepted connection gets a tlsState: a
// *tls.Conn over an in-memory transport. The handshake runs on a goroutine
// of its own, one of at most Options.MaxTLSHandshakes, since crypto/tls
// makes an error of its transport sticky during a handshake and so needs a
// Read that blocks: the loop copies the ciphertext it reads into the
// transport and wakes the goroutine, whose writes come back to the loop
// through the inbox (opRaw) to be written with gnet. Once the handshake is
// done the loop owns the tls.Conn: the transport turns non-blocking (an
// empty Read returns errWouldBlock, a net.Error both Timeout and Temporary,
// which crypto/tls does not keep), the loop decrypts what each read
// callback brings, read in place from gnet's buffer (only what came during
// the handshake is copied), into the connection's plaintext buffer, which
// the head and frame decoding read instead of gnet's buffer (Conn.peekIn,
// discardIn, inBuffered), and everything it writes is encrypted on the way
// out (evloop.out). The transport never returns bytes past the end of the
// current TLS record, which bounds crypto/tls's input buffer to one record.
//
// The handshake timeout runs from accept and covers the TLS handshake and
// the request head: a connection still in its TLS handshake when it fires
// is closed, and closing the transport ends the handshake goroutine.

// tlsEarly is the ciphertext, beyond one message of MaxMessage, that a
// connection may have waiting while its handshake goroutine runs: room for
// the largest certificate message crypto/tls accepts (256 KiB), and for a
// request head with some frames that a TLS 1.3 client sends right behind
// its Finished (as much as a deferred decision lets wait, MaxWaitInput).
const tlsEarly = 256<<10 + MaxWaitInput

// tlsKeep is the largest ciphertext buffer a transport keeps once empty
// during the handshake.
const tlsKeep = 64 << 10

// errWouldBlock is what an empty non-blocking transport returns.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "loop: no TLS input yet" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// errTransportClosed ends a handshake whose connection was closed.
var errTransportClosed = errors.New("loop: connection closed")

// tlsState is a TLS connection's state.
type tlsState struct {
	conn  *tls.Conn                  // until the hand-over; nil with rec
	tr    *transport                 // conn's; nil with rec
	rec   *tlsrec.Conn               // after the hand-over to the loop's record layer (tls13.go)
	ready bool                       // the handshake is done: the loop owns conn; loop goroutine
	used  uint32                     // tick of rec's last record written (see tlsIdleDue)
	err   error                      // the read error (close_notify is io.EOF); loop goroutine
	plain *bytebufferpool.ByteBuffer // decrypted input not consumed yet; nil when none
	carry *bytebufferpool.ByteBuffer // with rec: a record begun before the hand-over; nil when none
	info  *TLSInfo                   // once the handshake is done
}

// transport is the net.Conn under a tls.Conn.
type transport struct {
	c *conn

	mu       sync.Mutex
	cond     sync.Cond
	in       []byte // ciphertext; in[off:] is not yet read by crypto/tls
	off      int
	src      []byte // after the handshake: the read callback's bytes, read after in
	blocking bool   // Read waits for input (during the handshake)
	async    bool   // Write hands the bytes to the loop's inbox (during the handshake)
	closed   bool

	// The hand-over (tls13.go): the key log, and the records written
	// during the handshake.
	keys keySink
	sent []byte

	alert int // 1 + the code of the first plaintext alert written; 0 for none

	// Record boundaries of the bytes returned by Read (see bound).
	hdr  [tlsrec.HeaderLen]byte
	hn   int // header bytes seen of the current record
	left int // body bytes of the current record not yet returned
}

// bound returns how many of avail bytes Read may return into a buffer of
// n bytes: never past the end of the current record. t.mu held.
func (t *transport) bound(avail []byte, n int) int {
	k := 0
	for k < len(avail) && k < n {
		if t.left == 0 {
			if t.hn == tlsrec.HeaderLen {
				t.hn = 0 // the previous record ended: a new header begins
				if k > 0 {
					return k
				}
			}
			t.hdr[t.hn] = avail[k]
			t.hn++
			k++
			if t.hn == tlsrec.HeaderLen {
				t.left = int(t.hdr[3])<<8 | int(t.hdr[4])
				if t.left == 0 {
					return k
				}
			}
			continue
		}
		m := min(t.left, len(avail)-k, n-k)
		t.left -= m
		k += m
		if t.left == 0 {
			return k
		}
	}
	return k
}

// Read implements net.Conn for crypto/tls.
func (t *transport) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.in) == t.off && len(t.src) == 0 {
		if t.closed {
			return 0, errTransportClosed
		}
		if !t.blocking {
			return 0, errWouldBlock
		}
		t.cond.Wait()
	}
	if t.off == len(t.in) {
		k := t.bound(t.src, len(p))
		t.src = t.src[copy(p, t.src[:k]):]
		return k, nil
	}
	k := t.bound(t.in[t.off:], len(p))
	copy(p, t.in[t.off:t.off+k])
	t.off += k
	if t.off == len(t.in) {
		t.in, t.off = t.in[:0], 0
		if cap(t.in) > tlsKeep || !t.blocking {
			t.in = nil // after the handshake, ciphertext is read in place
		}
	}
	return k, nil
}

// Write implements net.Conn for crypto/tls: during the handshake it hands
// the bytes to the loop, after it writes them with gnet (loop goroutine).
func (t *transport) Write(p []byte) (int, error) {
	if t.async {
		t.mu.Lock()
		closed := t.closed
		t.mu.Unlock()
		if closed {
			return 0, errTransportClosed
		}
		if !t.c.l.srv.opts.TLSStdRecords {
			t.sent = append(t.sent, p...)
		}
		if len(p) >= 7 && p[0] == byte(tlsrec.TypeAlert) {
			t.mu.Lock()
			if t.alert == 0 {
				t.alert = int(p[6]) + 1 // a plaintext alert: level, then code
			}
			t.mu.Unlock()
		}
		buf := bytebufferpool.Get()
		buf.B = append(buf.B[:0], p...)
		if !t.c.l.post(inboxOp{kind: opRaw, c: t.c, id: t.c.id.Load(), buf: buf}) {
			bytebufferpool.Put(buf)
			return 0, errTransportClosed
		}
		return len(p), nil
	}
	if t.c.phase() == stClosed {
		return 0, errTransportClosed
	}
	return t.c.gc.Write(p)
}

// feed appends ciphertext read by the loop and returns the bytes waiting.
// Loop goroutine.
func (t *transport) feed(b []byte) int {
	t.mu.Lock()
	if t.off > 0 && t.off >= len(t.in)/2 {
		t.in = t.in[:copy(t.in, t.in[t.off:])]
		t.off = 0
	}
	t.in = append(t.in, b...)
	n := len(t.in) - t.off
	t.mu.Unlock()
	t.cond.Signal()
	return n
}

// Close implements net.Conn: a blocked Read returns.
func (t *transport) Close() error {
	t.mu.Lock()
	t.closed = true
	t.in, t.off = nil, 0
	t.mu.Unlock()
	t.cond.Broadcast()
	return nil
}

func (t *transport) LocalAddr() net.Addr              { return t.c.gc.LocalAddr() }
func (t *transport) RemoteAddr() net.Addr             { return t.c.handle().RemoteAddr() }
func (t *transport) SetDeadline(time.Time) error      { return nil }
func (t *transport) SetReadDeadline(time.Time) error  { return nil }
func (t *transport) SetWriteDeadline(time.Time) error { return nil }

// tlsAcquire takes a handshake slot; false when all are taken.
func (s *Server) tlsAcquire() bool {
	select {
	case s.tlsSlots <- struct{}{}:
		return true
	default:
		return false
	}
}

// startTLS attaches a tlsState to c, just accepted. Its handshake starts
// once the client's first record is whole (beginHandshake): until then a
// connection costs what a plain one waiting for its request head does, no
// goroutine, no *tls.Conn and no handshake slot, however slowly its
// ClientHello comes. Loop goroutine.
func (l *evloop) startTLS(c *conn) {
	t := &transport{c: c, blocking: true, async: true}
	t.cond.L = &t.mu
	c.extra().tls = &tlsState{tr: t}
}

// beginHandshake starts c's handshake on a goroutine holding a slot, once
// the transport holds the client's whole first record, or enough of it to
// see that it is not a handshake record (for crypto/tls to answer). false
// when every slot is taken: c is closed and counted in Stats.TLSRefused.
// Loop goroutine.
func (l *evloop) beginHandshake(c *conn) bool {
	st := c.tlsSt()
	if st.conn != nil || !st.tr.firstRecord() {
		return true
	}
	if !l.srv.tlsAcquire() {
		l.stats.TLSRefused.Add(1)
		c.tlsEnded = true // refused, not failed
		l.hardClose(c)
		return false
	}
	st.conn = tls.Server(st.tr, l.srv.tlsConf)
	go l.handshake(c, st)
	return true
}

// firstRecord reports whether the input holds the whole first record, or
// a first record header that is not a handshake's.
func (t *transport) firstRecord() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.in[t.off:]
	if len(b) < tlsrec.HeaderLen {
		return false
	}
	if b[0] != byte(tlsrec.TypeHandshake) {
		return true
	}
	return len(b) >= tlsrec.HeaderLen+(int(b[3])<<8|int(b[4]))
}

// handshake runs c's TLS handshake and hands the result to the loop. The
// slot is free again before the loop hears of it.
func (l *evloop) handshake(c *conn, st *tlsState) {
	err := st.conn.HandshakeContext(context.Background())
	<-l.srv.tlsSlots
	l.post(inboxOp{kind: opExec, fn: func() { l.handshakeDone(c, err) }})
}

// handshakeDone runs on the loop once c's handshake goroutine is done.
func (l *evloop) handshakeDone(c *conn, err error) {
	st := c.tlsSt()
	if err != nil {
		l.handshakeFailed(c, err) // tlsfail.go
		return
	}
	if c.phase() == stClosed {
		return
	}
	l.stats.TLSHandshakes.Add(1)
	cs := st.conn.ConnectionState()
	st.info = newTLSInfo(&cs)
	t := st.tr
	t.mu.Lock()
	t.blocking = false
	t.mu.Unlock()
	t.async = false
	st.ready = true
	if c.phase() != stHead {
		return // the drain ended it meanwhile
	}
	// Application data may have come behind the client's Finished.
	prev := l.cur
	if prev != nil {
		l.flush()
	}
	l.cur = c
	l.handover(c, st)
	l.serve(c)
	l.flush()
	l.tlsQuiet(c, true)
	l.cur = prev
	switch c.phase() {
	case stClosed:
		l.releaseAux(c)
		l.endTLS(c)
	case stFlushing, stLinger:
		l.releaseAux(c)
	}
}

// tlsTraffic takes the ciphertext of c's read callback: to the handshake
// goroutine, or decrypted into c's plaintext buffer. false when c was
// closed. Loop goroutine.
func (l *evloop) tlsTraffic(c *conn) bool {
	st := c.tlsSt()
	gc := c.gc
	buf, _ := gc.Peek(-1)
	if !st.ready {
		if c.flags&fProxy != 0 {
			n, ok := l.proxyBeforeTLS(c, buf)
			if !ok {
				return true // incomplete (kept in gnet's buffer), or refused
			}
			discard(gc, n)
			buf = buf[n:]
		}
		n := st.tr.feed(buf)
		_, _ = gc.Discard(len(buf))
		if n > tlsEarly+int(l.srv.opts.MaxMessage) {
			l.tlsFailed(c, TLSFailHandshake)
			l.hardClose(c)
			return false
		}
		return l.beginHandshake(c)
	}
	if st.rec != nil {
		discard(gc, l.recDecrypt(c, st, buf)) // a record cut short stays
		return true
	}
	// Read in place: crypto/tls takes every byte into its record buffer
	// before it reports that it needs more.
	t := st.tr
	t.mu.Lock()
	t.src = buf
	t.mu.Unlock()
	st.decrypt(l)
	t.mu.Lock()
	t.src = nil
	t.mu.Unlock()
	_, _ = gc.Discard(len(buf))
	return true
}

// tlsReadChunk is the room made in the plaintext buffer for each Read.
const tlsReadChunk = 16 << 10

// decrypt reads every complete record of the transport into the plaintext
// buffer. Loop goroutine.
func (st *tlsState) decrypt(l *evloop) {
	for st.err == nil {
		if st.plain == nil {
			st.plain = l.getPlain()
		}
		b := slices.Grow(st.plain.B, tlsReadChunk)
		n, err := st.conn.Read(b[len(b):cap(b)])
		st.plain.B = b[:len(b)+n]
		if err != nil {
			// crypto/tls returns its transport's would-block error as it
			// is (a comparison, where errors.As would allocate).
			if err != errWouldBlock {
				st.err = err
			}
			break
		}
	}
	if len(st.plain.B) == 0 {
		l.putPlain(st)
	}
}

// sentAlert returns the code of the first alert written in plaintext
// during the handshake, or -1.
func (t *transport) sentAlert() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.alert - 1
}

// closeTransport closes the transport, if any: a handshake goroutine
// blocked in Read returns.
func (st *tlsState) closeTransport() {
	if st.tr != nil {
		st.tr.Close()
	}
}

// plainKeep is the largest plaintext buffer a loop keeps to lend again.
const plainKeep = 64 << 10

// getPlain returns an empty plaintext buffer: the loop's spare one, else
// one from the pool. Loop goroutine.
//
// A connection holds a plaintext buffer only while it has input not
// consumed: in the usual case a read callback decrypts whole messages and
// consumes them, and the buffer comes back to the loop at once. Lending
// the loop's spare keeps that case off sync.Pool, which empties at every
// GC and then allocates a buffer and its bytes per read.
func (l *evloop) getPlain() *bytebufferpool.ByteBuffer {
	if b := l.plainSpare; b != nil {
		l.plainSpare = nil
		return b
	}
	b := bytebufferpool.Get()
	b.B = b.B[:0]
	return b
}

// putPlain takes st's plaintext buffer back: as the loop's spare when it
// has none and the buffer is not too big, else to the pool. Loop
// goroutine.
func (l *evloop) putPlain(st *tlsState) {
	b := st.plain
	if b == nil {
		return
	}
	st.plain = nil
	if l.plainSpare == nil && cap(b.B) <= plainKeep {
		b.B = b.B[:0]
		l.plainSpare = b
		return
	}
	bytebufferpool.Put(b)
}

// peekIn returns the input not consumed yet: gnet's buffer, or the
// plaintext of a TLS connection. Loop goroutine.
func (c *conn) peekIn() []byte {
	if st := c.tlsSt(); st != nil {
		if st.plain == nil {
			return nil
		}
		return st.plain.B
	}
	b, _ := c.gc.Peek(-1)
	return b
}

// discardIn consumes n bytes of the input. Loop goroutine.
func (c *conn) discardIn(n int) {
	if st := c.tlsSt(); st != nil {
		if st.plain == nil {
			return
		}
		b := st.plain.B
		st.plain.B = b[:copy(b, b[min(n, len(b)):])]
		if len(st.plain.B) == 0 {
			c.l.putPlain(st)
		}
		return
	}
	discard(c.gc, n)
}

// discard consumes the first n bytes of gc's input. gnet's Discard takes
// n <= 0 for everything, which would drop a record or a frame cut short
// that waits for the rest of its bytes.
func discard(gc gnet.Conn, n int) {
	if n > 0 {
		_, _ = gc.Discard(n)
	}
}

// inBuffered returns the bytes of input not consumed yet. Loop goroutine.
func (c *conn) inBuffered() int {
	if st := c.tlsSt(); st != nil {
		if st.plain == nil {
			return 0
		}
		return len(st.plain.B)
	}
	return c.gc.InboundBuffered()
}

// out writes b to c's socket, encrypted for a TLS connection (dropped
// before its handshake is done: nothing is due then). Loop goroutine.
func (l *evloop) out(c *conn, b []byte) {
	if st := c.tlsSt(); st != nil {
		switch {
		case st.rec != nil:
			l.recOut(c, st, b, nil)
		case st.ready:
			_, _ = st.conn.Write(b)
		}
		return
	}
	_, _ = c.gc.Write(b)
}

// outv writes the buffers of iov as out does.
func (l *evloop) outv(c *conn, iov [][]byte) {
	if st := c.tlsSt(); st != nil && st.rec != nil && len(iov) == 2 {
		l.recOut(c, st, iov[0], iov[1])
		return
	}
	if c.tlsSt() != nil {
		for _, b := range iov {
			l.out(c, b)
		}
		return
	}
	_, _ = c.gc.Writev(iov)
}

// endTLS runs when c closes: a handshake goroutine blocked in Read
// returns, and the plaintext buffer goes back. Loop goroutine.
func (l *evloop) endTLS(c *conn) {
	if st := c.tlsSt(); st != nil {
		st.closeTransport()
		l.putPlain(st)
		if st.carry != nil {
			bytebufferpool.Put(st.carry)
			st.carry = nil
		}
	}
}
