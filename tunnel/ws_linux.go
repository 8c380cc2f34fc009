//go:build linux

package tunnel

import (
	"errors"
	"fmt"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/loop/frame"
)

// Close statuses the tunnel sends A (RFC 6455 §7.4.1).
const (
	statusNormal    = ws.StatusNormalClosure            // 1000: B ended
	statusGoingAway = ws.StatusGoingAway                // 1001: Close, Shutdown, IdleTimeout
	statusInternal  = ws.StatusInternalServerError      // 1011: B failed
	headroom        = frame.MaxServerHeaderLen          // bytes reserved for a frame header
	ctlFrameLen     = 2 + ws.MaxControlFramePayloadSize // a server control frame
)

// ErrProtocol: A broke RFC 6455 or sent a text message; the error reported
// to onEnd wraps it and names the close status sent.
var ErrProtocol = errors.New("tunnel: WebSocket protocol error")

// wsState is the state of a WebSocket-mode tunnel, owned by its loop.
type wsState struct {
	t  *Tunnel
	rd wsReader

	// A→B: in.b[o0:o1] is payload for B, in.b[i0:i1] bytes from A not yet
	// decoded; o1 <= i0 always holds since payload is compacted forward.
	in             *wsBuf
	inPooled       bool
	o0, o1, i0, i1 int
	ping           []byte // a ping whose pong waits for the pong slot
	held           bool

	// B→A: out.b[p0:p1] is the frame being written, carrying outN payload
	// bytes; started once part of it was written.
	out     *wsBuf
	p0, p1  int
	outN    int
	started bool

	pong           [ctlFrameLen]byte
	pongN, pongOff int
	cls            [ctlFrameLen]byte
	clsN, clsOff   int
	clsQueued      bool
	closeSent      bool // cls was written in full
	aClosed, aEOF  bool // A sent a close frame; A's stream ended
	bEOF, bShut    bool
	failing        bool // closing A with cls, then ending with failErr
	failErr        error
}

// newWSState returns the state of t, whose prefix is decoded first.
func newWSState(t *Tunnel) *wsState {
	s := &wsState{t: t}
	if len(t.prefix) > 0 {
		s.in = &wsBuf{b: t.prefix}
		s.i1 = len(t.prefix)
	}
	return s
}

// release returns the buffers to the pool.
func (s *wsState) release() {
	s.releaseIn()
	s.releaseOut()
}

func (s *wsState) releaseIn() {
	if s.in != nil && s.inPooled {
		s.t.loop.r.bufs.Put(s.in)
	}
	s.in, s.inPooled = nil, false
	s.o0, s.o1, s.i0, s.i1 = 0, 0, 0, 0
}

func (s *wsState) releaseOut() {
	if s.out != nil {
		s.t.loop.r.bufs.Put(s.out)
	}
	s.out = nil
	s.p0, s.p1, s.outN, s.started = 0, 0, 0, false
}

// queuePong puts a pong echoing payload in the pong slot and reports
// whether it could: a pong partly written must finish first. A newer ping
// replaces a pong not yet started (§5.5.3). After a close, pings get no
// answer (§5.5.1).
func (s *wsState) queuePong(payload []byte) bool {
	if s.clsQueued {
		return true
	}
	if s.pongOff > 0 && s.pongOff < s.pongN {
		return false
	}
	s.pongN = len(frame.AppendFrame(s.pong[:0], ws.OpPong, true, payload))
	s.pongOff = 0
	return true
}

// queueClose puts a close frame with code in the close slot, unless one is
// there already.
func (s *wsState) queueClose(code ws.StatusCode) {
	if s.clsQueued {
		return
	}
	if code == ws.StatusNoStatusRcvd {
		code = statusNormal
	}
	s.clsQueued = true
	s.clsN = len(frame.AppendClose(s.cls[:0], code, ""))
	s.clsOff = 0
}

// fail starts closing A with code, then ending the tunnel with err: data
// not yet started toward A is dropped, nothing more is read or forwarded.
func (s *wsState) fail(code ws.StatusCode, err error) {
	if s.failing {
		return
	}
	t := s.t
	s.failing, s.failErr, t.stopping = true, err, true
	deadline := t.loop.now + int64(t.loop.r.opts.DrainTimeout)
	if t.deadline == 0 || deadline < t.deadline {
		t.deadline = deadline
	}
	if !s.started {
		s.releaseOut()
	}
	s.releaseIn()
	s.held = false
	s.queueClose(code)
}

// failWS fails the tunnel from outside a pump: see wsState.fail.
func (t *Tunnel) failWS(code ws.StatusCode, err error) {
	t.ws.fail(code, err)
	t.pumpWS()
}

// pumpWS moves what can be moved both ways, then settles.
func (t *Tunnel) pumpWS() {
	s := t.ws
	if !s.failing {
		if err, onA := s.pumpAB(); err != nil {
			if onA {
				t.end(err)
				return
			}
			s.fail(statusInternal, err)
		}
	}
	for range 2 {
		err, onA := s.pumpBA()
		if err == nil {
			break
		}
		if onA {
			t.end(err)
			return
		}
		s.fail(statusInternal, err)
	}
	s.settle()
}

// pumpAB decodes A's frames and writes their payload to B. Its error comes
// from A (onA) or B.
func (s *wsState) pumpAB() (err error, onA bool) {
	t := s.t
	for range pumpRounds {
		if s.failing {
			return nil, false
		}
		if s.o1 > s.o0 {
			n, err := unix.Write(t.b, s.in.b[s.o0:s.o1])
			if err == unix.EAGAIN || err == unix.EINTR {
				return nil, false
			}
			if err != nil {
				return fmt.Errorf("tunnel: write: %w", err), false
			}
			s.o0 += n
			t.bytesAB.Add(int64(n))
			t.active = t.loop.now
			continue
		}
		if s.held {
			if !s.queuePong(s.ping) {
				return nil, false
			}
			s.held, s.ping = false, nil
		}
		if s.i1 > s.i0 {
			s.parse()
			continue
		}
		if s.aEOF {
			break
		}
		if !s.inPooled {
			s.releaseIn()
			s.in, s.inPooled = t.loop.r.bufs.Get().(*wsBuf), true
		}
		n, err := unix.Read(t.a, s.in.b[:t.loop.r.opts.BufferSize])
		if err == unix.EAGAIN || err == unix.EINTR {
			break
		}
		if err != nil {
			return fmt.Errorf("tunnel: read: %w", err), true
		}
		if n == 0 {
			s.aEOF = true
			t.startDrain()
			break
		}
		t.active = t.loop.now
		s.o0, s.o1, s.i0, s.i1 = 0, 0, 0, n
		s.parse() // in the same round: leftover input has no event to wake it
	}
	if s.o0 == s.o1 && s.i0 == s.i1 {
		s.releaseIn()
	}
	return nil, false
}

// parse decodes A's bytes in.b[i0:i1] into payload for B at in.b[o0:o1],
// which it expects empty, until all are decoded, a ping waits for the pong
// slot or the tunnel fails.
func (s *wsState) parse() {
	t := s.t
	s.o0, s.o1 = 0, 0
	for s.i1 > s.i0 && !s.held && !s.failing {
		ev, p, n, code := s.rd.next(s.in.b[s.i0:s.i1])
		s.i0 += n
		switch ev {
		case wsData:
			s.o1 += copy(s.in.b[s.o1:], p)
		case wsPing:
			if !s.queuePong(p) {
				s.ping, s.held = p, true
			}
		case wsClose:
			s.aClosed = true
			t.startDrain()
			s.queueClose(code)
		case wsError:
			s.fail(code, fmt.Errorf("%w: close %d", ErrProtocol, code))
		}
	}
}

// pumpBA writes to A, in this order, the rest of a data frame already
// started, a pong, the next data frame and the close frame, and frames what
// B sends. Its error comes from A (onA) or B.
func (s *wsState) pumpBA() (err error, onA bool) {
	t := s.t
	for range pumpRounds {
		var b []byte
		what := 0 // 1: data, 2: pong, 3: close
		switch {
		case s.p1 > s.p0 && s.started:
			b, what = s.out.b[s.p0:s.p1], 1
		case s.pongOff < s.pongN:
			b, what = s.pong[s.pongOff:s.pongN], 2
		case s.p1 > s.p0:
			b, what = s.out.b[s.p0:s.p1], 1
		case s.clsQueued && s.clsOff < s.clsN:
			b, what = s.cls[s.clsOff:s.clsN], 3
		}
		if b != nil {
			n, err := unix.Write(t.a, b)
			if err == unix.EAGAIN || err == unix.EINTR {
				return nil, false
			}
			if err != nil {
				return fmt.Errorf("tunnel: write: %w", err), true
			}
			t.active = t.loop.now
			switch what {
			case 2:
				s.pongOff += n
				if s.pongOff == s.pongN {
					s.pongOff, s.pongN = 0, 0
				}
			case 3:
				s.clsOff += n
				s.closeSent = s.clsOff == s.clsN
			default:
				s.p0 += n
				s.started = true
				if s.p0 == s.p1 {
					t.bytesBA.Add(int64(s.outN))
					s.p0, s.p1, s.outN, s.started = 0, 0, 0, false
				}
			}
			continue
		}
		if s.bEOF || s.failing {
			break
		}
		if s.out == nil {
			s.out = t.loop.r.bufs.Get().(*wsBuf)
		}
		n, err := unix.Read(t.b, s.out.b[headroom:])
		if err == unix.EAGAIN || err == unix.EINTR {
			break
		}
		if err != nil {
			return fmt.Errorf("tunnel: read: %w", err), false
		}
		if n == 0 {
			s.bEOF = true
			t.startDrain()
			s.queueClose(statusNormal)
			continue
		}
		t.active = t.loop.now
		if s.clsQueued {
			continue // A closed: what B still sends has nowhere to go
		}
		hl := frame.HeaderLen(n)
		frame.AppendHeader(s.out.b[headroom-hl:headroom-hl], ws.OpBinary, true, n)
		s.p0, s.p1, s.outN = headroom-hl, headroom+n, n
	}
	if s.p0 == s.p1 {
		s.releaseOut()
	}
	return nil, false
}

// settle shuts B down once A's stream ended and everything reached B, ends
// the tunnel when both sides are done and otherwise updates what epoll
// watches.
func (s *wsState) settle() {
	t := s.t
	if s.failing {
		if s.closeSent {
			s.linger()
			t.end(s.failErr)
			return
		}
		t.watch(unix.EPOLLOUT, 0)
		t.account(int64(s.p1 - s.p0))
		return
	}
	if (s.aClosed || s.aEOF) && s.o0 == s.o1 && !s.bShut {
		s.bShut = true
		if err := unix.Shutdown(t.b, unix.SHUT_WR); err != nil && err != unix.ENOTCONN {
			t.end(fmt.Errorf("tunnel: shutdown: %w", err))
			return
		}
	}
	if s.bShut && s.bEOF && s.closeSent {
		t.end(nil)
		return
	}
	var evA, evB uint32
	if !s.aEOF && s.i0 == s.i1 && s.o0 == s.o1 && !s.held {
		evA |= unix.EPOLLIN
	}
	if s.p1 > s.p0 || s.pongOff < s.pongN || (s.clsQueued && !s.closeSent) {
		evA |= unix.EPOLLOUT
	}
	if s.o1 > s.o0 {
		evB |= unix.EPOLLOUT
	}
	if !s.bEOF && s.p0 == s.p1 {
		evB |= unix.EPOLLIN
	}
	if !t.watch(evA, evB) {
		return
	}
	t.account(int64(s.o1 - s.o0 + s.i1 - s.i0 + s.p1 - s.p0))
}

// linger ends A's side after a close frame: it shuts A down for writing and
// reads what A already sent, so that closing A sends a FIN rather than a
// reset that could destroy the close frame before A reads it.
func (s *wsState) linger() {
	t := s.t
	unix.Shutdown(t.a, unix.SHUT_WR) //nolint:errcheck // A may be gone
	var scratch [512]byte
	for range 8 {
		n, err := unix.Read(t.a, scratch[:])
		if n <= 0 || err != nil {
			return
		}
	}
}
