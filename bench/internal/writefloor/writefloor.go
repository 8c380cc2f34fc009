// Package writefloor is the floor of the benchmark's broadcast scenario:
// the least a server can do to deliver one published message to every
// subscriber. For every message a publisher sends it unmasks the payload
// once, builds the server frame once, and writes those same bytes to every
// subscriber's socket with one write(2) each, in one tight loop per writer
// goroutine, each locked to its thread. There is no per-subscriber framing,
// queueing or bookkeeping: a subscriber is a file descriptor in a slice.
//
// # Accepting
//
// A plain accept loop on a net.Listener: each connection's request head is
// read and answered on a goroutine of its own, by gobwas/ws's Upgrader
// (which finds the path and Sec-WebSocket-Key, checks the rest and computes
// Sec-WebSocket-Accept), bounded in size (Options.MaxHead) and in time
// (Options.HandshakeTimeout). A subscriber's socket then leaves Go's
// poller: its descriptor is duplicated and the net.Conn closed, and the
// duplicate belongs to one writer (descriptor modulo Options.Writers),
// which alone writes to it and alone closes it. No descriptor is ever
// closed, and its number reused, under a writer that still writes to it —
// the reason this is not gnet: gnet closes its connections' descriptors
// on its own loop, and a writer on another goroutine would race with it.
// Accepting and handshakes are not what the floor measures; the benchmark
// starts its clock after them.
//
// A subscriber's 101 is written under its writer's lock, just before the
// descriptor joins the writer: a subscriber that has its 101 gets every
// message published after it, and never a frame before its 101.
//
// # Writing
//
// A write that the socket takes whole is a delivery. EAGAIN (the send
// buffer is full) writes nothing: the subscriber misses that message, its
// stream stays whole, and the write is counted (Stats.EAGAIN), never
// retried. A write that takes part of the frame leaves the subscriber with
// a broken stream: it is counted (Stats.Short) and the subscriber dropped
// (closed). Any other error (the peer reset or closed) drops the
// subscriber too (Stats.Gone). Subscribers are never read: a subscriber
// that goes away is noticed at the next write.
//
// Publishers (on Options.PubPath) are read with upgate's frame decoder
// (loop/frame: masking, control frames, fragments, a message size limit);
// pings are answered, a close frame is answered and ends the publisher.
package writefloor

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/loop/frame"
)

// Defaults of Options.
const (
	DefaultPath             = "/ws/bench"
	DefaultPubPath          = "/pub/bench"
	DefaultQueue            = 1024
	DefaultMaxMessage       = 64 << 10
	DefaultMaxHead          = 4096
	DefaultHandshakeTimeout = 10 * time.Second
	// MaxWriters bounds Options.Writers.
	MaxWriters = 256
)

// maxClientHeader is the longest header of a client (masked) frame.
const maxClientHeader = 14

// ErrClosed is returned by Serve once Close was called.
var ErrClosed = errors.New("writefloor: server closed")

// Options configures a Server. Zero values take the defaults.
type Options struct {
	// Path is the subscribers' request path (DefaultPath).
	Path string
	// PubPath is the publishers' request path (DefaultPubPath). Other
	// paths are answered with 404.
	PubPath string
	// Writers is the number of writer goroutines (1), each locked to its
	// thread; the subscribers are split among them by descriptor.
	Writers int
	// Queue bounds the messages waiting for each writer (DefaultQueue); a
	// publisher waits while a writer's queue is full.
	Queue int
	// MaxMessage bounds a published message's payload in bytes
	// (DefaultMaxMessage); a larger one ends its publisher with 1009.
	MaxMessage int
	// MaxHead bounds a request head's lines in bytes (DefaultMaxHead).
	MaxHead int
	// HandshakeTimeout bounds the reading of a request head
	// (DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
}

// Stats are a Server's counters.
type Stats struct {
	Subscribers int64 // subscribers that got their 101 and were not dropped (Close drops none)
	Publishers  int64 // publishers that got their 101
	Rejected    int64 // request heads answered with an error status
	Unfinished  int64 // connections that ended or timed out before a whole request head
	Published   int64 // messages received from publishers and given to the writers
	Written     int64 // frames written whole to a subscriber: deliveries
	EAGAIN      int64 // writes refused by a full send buffer: a message missed
	Short       int64 // writes that took part of a frame: the subscriber dropped
	Gone        int64 // writes that failed otherwise: the subscriber dropped
	Rounds      int64 // messages the writers are done with, summed over the writers
}

// Server is the write(2) floor. Serve accepts on one or more listeners;
// Close ends everything.
type Server struct {
	opts    Options
	writers []*writer
	done    chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex // guards closed, lns and conns
	closed bool
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{} // handshakes in progress and publishers

	publishers, rejected, unfinished, published atomic.Int64
}

// New returns a Server with opts, its writers running.
func New(opts Options) (*Server, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	if opts.PubPath == "" {
		opts.PubPath = DefaultPubPath
	}
	def(&opts.Writers, 1)
	def(&opts.Queue, DefaultQueue)
	def(&opts.MaxMessage, DefaultMaxMessage)
	def(&opts.MaxHead, DefaultMaxHead)
	if opts.HandshakeTimeout == 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	switch {
	case opts.Path == opts.PubPath:
		return nil, fmt.Errorf("writefloor: the subscribers' and the publishers' paths are both %s", opts.Path)
	case opts.Writers < 1 || opts.Writers > MaxWriters:
		return nil, fmt.Errorf("writefloor: %d writers; want 1 to %d", opts.Writers, MaxWriters)
	case opts.Queue < 1, opts.MaxMessage < 1, opts.MaxHead < 64, opts.HandshakeTimeout < 0:
		return nil, fmt.Errorf("writefloor: queue %d, message limit %d, head limit %d, handshake timeout %v; want them positive (the head limit at least 64)",
			opts.Queue, opts.MaxMessage, opts.MaxHead, opts.HandshakeTimeout)
	}
	s := &Server{
		opts:  opts,
		done:  make(chan struct{}),
		lns:   map[net.Listener]struct{}{},
		conns: map[net.Conn]struct{}{},
	}
	for range opts.Writers {
		w := &writer{frames: make(chan []byte, opts.Queue)}
		s.writers = append(s.writers, w)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			w.run(s.done)
		}()
	}
	return s, nil
}

// Serve accepts connections on ln until Close, and returns ErrClosed then,
// or the listener's error if it fails otherwise. Accept errors such as
// running out of descriptors are waited out, from 5 ms up to 1 s.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-s.done:
				t.Stop()
				return ErrClosed
			case <-t.C:
			}
			continue
		}
		backoff = 0
		if !s.track(c) {
			_ = c.Close()
			continue
		}
		go s.handshake(c)
	}
}

// track records c as open, and counts its goroutine in s.wg; false once
// the server is closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// untrack forgets c and ends its goroutine's count.
func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Close stops accepting, closes every connection and waits for the
// writers, publishers and handshakes to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		for ln := range s.lns {
			_ = ln.Close()
		}
		for c := range s.conns {
			_ = c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Stats returns the counters; a writer adds its own after each message.
func (s *Server) Stats() Stats {
	st := Stats{Publishers: s.publishers.Load(), Rejected: s.rejected.Load(), Unfinished: s.unfinished.Load(), Published: s.published.Load()}
	for _, w := range s.writers {
		st.Subscribers += w.live.Load()
		st.Written += w.written.Load()
		st.EAGAIN += w.eagain.Load()
		st.Short += w.short.Load()
		st.Gone += w.gone.Load()
		st.Rounds += w.rounds.Load()
	}
	return st
}

// String is the one line the command prints at exit.
func (st Stats) String() string {
	return fmt.Sprintf("%d messages published, %d deliveries written, %d EAGAIN (message missed), "+
		"%d short writes and %d write errors (subscriber dropped); %d subscribers, %d publishers, "+
		"%d requests rejected, %d connections without a whole request",
		st.Published, st.Written, st.EAGAIN, st.Short, st.Gone, st.Subscribers, st.Publishers, st.Rejected, st.Unfinished)
}

// headConn reads a request head from a connection and keeps the response
// written to it: the caller decides when it goes out.
type headConn struct {
	r   net.Conn
	out []byte
}

func (h *headConn) Read(p []byte) (int, error) { return h.r.Read(p) }

func (h *headConn) Write(p []byte) (int, error) {
	h.out = append(h.out, p...)
	return len(p), nil
}

// handshake answers c's request head and hands c to a writer (subscriber)
// or reads it (publisher).
func (s *Server) handshake(c net.Conn) {
	defer s.untrack(c)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	pub := false
	u := ws.Upgrader{
		ReadBufferSize: s.opts.MaxHead,
		OnRequest: func(uri []byte) error {
			path, _, _ := bytes.Cut(uri, []byte("?"))
			switch string(path) {
			case s.opts.Path:
			case s.opts.PubPath:
				pub = true
			default:
				return ws.RejectConnectionError(ws.RejectionStatus(404),
					ws.RejectionReason(fmt.Sprintf("No such path: subscribe on %s, publish on %s.", s.opts.Path, s.opts.PubPath)))
			}
			return nil
		},
	}
	h := &headConn{r: c}
	if _, err := u.Upgrade(h); err != nil {
		if len(h.out) == 0 {
			s.unfinished.Add(1)
			return
		}
		s.rejected.Add(1)
		_, _ = c.Write(h.out)
		return
	}
	if pub {
		s.publishers.Add(1)
		_ = c.SetDeadline(time.Time{})
		if _, err := c.Write(h.out); err == nil {
			s.publish(c)
		}
		return
	}
	fd, err := dupFd(c)
	if err != nil {
		return
	}
	if !s.writers[fd%len(s.writers)].add(fd, h.out) {
		_ = unix.Close(fd)
	}
}

// dupFd returns a duplicate of c's descriptor (close-on-exec, non-blocking
// as c's is): once c is closed, the socket is the duplicate's alone.
func dupFd(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("writefloor: %T has no descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// publish reads the messages of publisher c and gives each, framed once,
// to every writer.
func (s *Server) publish(c net.Conn) {
	var d frame.Decoder
	d.Init(frame.Limits{MaxMessage: int64(s.opts.MaxMessage)})
	defer d.Release()
	buf := make([]byte, s.opts.MaxMessage+maxClientHeader)
	start, end := 0, 0
	for {
		if end == len(buf) {
			end = copy(buf, buf[start:end])
			start = 0
		}
		n, err := c.Read(buf[end:])
		if err != nil {
			return
		}
		end += n
		for start < end {
			ev, used, err := d.Next(buf[start:end])
			if err == frame.ErrNeedMore {
				break
			}
			if err != nil {
				_, _ = c.Write(frame.AppendClose(nil, frame.CodeOf(err), err.Error()))
				return
			}
			start += used
			switch ev.Kind {
			case frame.Message:
				if !s.broadcast(ev.Op, ev.Payload) {
					return
				}
			case frame.Ping:
				if _, err := c.Write(frame.AppendFrame(nil, ws.OpPong, true, ev.Payload)); err != nil {
					return
				}
			case frame.Close:
				reply := frame.AppendFrame(nil, ws.OpClose, true, nil)
				if ev.Code != ws.StatusNoStatusRcvd {
					reply = frame.AppendClose(nil, ev.Code, "")
				}
				_, _ = c.Write(reply)
				return
			}
		}
		if start == end {
			start, end = 0, 0
		}
	}
}

// broadcast frames payload once and gives the frame to every writer; false
// once the server is closed.
func (s *Server) broadcast(op ws.OpCode, payload []byte) bool {
	f := frame.AppendFrame(make([]byte, 0, frame.HeaderLen(len(payload))+len(payload)), op, true, payload)
	s.published.Add(1)
	for _, w := range s.writers {
		select {
		case w.frames <- f:
		case <-s.done:
			return false
		}
	}
	return true
}

// writer writes every frame it is given to its subscribers' descriptors.
type writer struct {
	frames chan []byte

	mu       sync.Mutex // guards incoming and closed
	incoming []int      // subscribers that got their 101 since the last message
	closed   bool

	fds []int // the writer goroutine's alone

	live, written, eagain, short, gone, rounds atomic.Int64
}

// run is the writer goroutine, locked to its thread, until done.
func (w *writer) run(done <-chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for {
		select {
		case f := <-w.frames:
			w.write(f)
		case <-done:
			w.mu.Lock()
			w.closed = true
			w.fds = append(w.fds, w.incoming...)
			w.incoming = nil
			w.mu.Unlock()
			for _, fd := range w.fds {
				_ = unix.Close(fd)
			}
			w.fds = nil
			return
		}
	}
}

// add writes resp, the 101, to subscriber fd and gives fd to the writer,
// both under its lock: a message the writer starts after that reaches fd.
// False when the 101 did not go out whole or the writer has ended; the
// caller then closes fd.
func (w *writer) add(fd int, resp []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	if n, err := unix.Write(fd, resp); err != nil || n != len(resp) {
		return false
	}
	w.incoming = append(w.incoming, fd)
	w.live.Add(1)
	return true
}

// write writes f to every subscriber: one write(2) each.
func (w *writer) write(f []byte) {
	w.mu.Lock()
	w.fds = append(w.fds, w.incoming...)
	w.incoming = w.incoming[:0]
	w.mu.Unlock()
	var written, eagain, short, gone int64
	fds := w.fds
	for i := 0; i < len(fds); {
		n, err := unix.Write(fds[i], f)
		switch {
		case n == len(f):
			written++
			i++
			continue
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			eagain++
			i++
			continue
		case err == nil:
			short++
		default:
			gone++
		}
		_ = unix.Close(fds[i])
		last := len(fds) - 1
		fds[i] = fds[last]
		fds = fds[:last]
	}
	w.fds = fds
	w.written.Add(written)
	w.eagain.Add(eagain)
	w.short.Add(short)
	w.gone.Add(gone)
	w.live.Add(-(short + gone))
	w.rounds.Add(1)
}
