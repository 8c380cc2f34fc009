// Package splice is the baseline of the benchmark's tunnel scenario: the
// TCP tunnel a Go programmer would write in an afternoon. For each
// accepted connection it reads the HTTP request head (up to the blank
// line, bounded in size and in time), checks that it asks for
// "Upgrade: tcp", dials the upstream, answers 101 Switching Protocols,
// forwards the bytes that came after the head, and then copies both ways
// with io.Copy on a pair of goroutines, passing half-close on with
// CloseWrite.
//
// Between two *net.TCPConn on Linux, io.Copy ends in
// (*net.TCPConn).ReadFrom, which moves the bytes with splice(2) through a
// pipe (1 MiB, from a pool of the runtime's): zero-copy, as upgate's
// tunnel reactor, but with two goroutines and the runtime's poller per
// tunnel instead of one epoll loop.
package splice

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxHead          = 8 << 10
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultConnectTimeout   = 5 * time.Second
)

// Errors of the package.
var (
	// ErrClosed is returned by Serve once Close was called.
	ErrClosed = errors.New("splice: server closed")
	// ErrNoUpstream is returned by New without Options.Upstream.
	ErrNoUpstream = errors.New("splice: no upstream address")
)

// Options configures a Server.
type Options struct {
	// Upstream is the HOST:PORT every tunnel connects to.
	Upstream string
	// MaxHead bounds the request head in bytes (431 beyond); 0 means
	// DefaultMaxHead.
	MaxHead int
	// HandshakeTimeout bounds the wait for the request head (408);
	// 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds the upstream connect (502 when it fails);
	// 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// Stats are a Server's counters.
type Stats struct {
	Tunnels  int64 // tunnels opened
	Open     int64 // tunnels now
	Rejected int64 // requests answered other than 101
	Up, Down int64 // bytes client to upstream and back, of ended tunnels
}

// Server serves TCP tunnels on listeners.
type Server struct {
	opts Options

	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	tunnels, open, rejected, up, down atomic.Int64
}

// New returns a Server with opts, defaults filled in.
func New(opts Options) (*Server, error) {
	if opts.Upstream == "" {
		return nil, ErrNoUpstream
	}
	if opts.MaxHead <= 0 {
		opts.MaxHead = DefaultMaxHead
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	return &Server{opts: opts, lns: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}}, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{Tunnels: s.tunnels.Load(), Open: s.open.Load(), Rejected: s.rejected.Load(), Up: s.up.Load(), Down: s.down.Load()}
}

// Serve accepts connections on ln until Close; it returns ErrClosed then,
// or the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// out of descriptors or the like: back off as net/http does
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if !s.track(c) {
			_ = c.Close()
			return ErrClosed
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

// Close stops the listeners and ends every connection and tunnel; it
// waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		_ = ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers c for Close; it reports false once closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Answers other than the 101.
const (
	switched   = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	badRequest = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	tooLarge   = "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	timedOut   = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	badGateway = "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)

// serve reads c's request head, opens the tunnel and copies until both
// directions ended.
func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer s.untrack(c)
	defer c.Close()
	rest, answer := s.readHead(c)
	if answer != "" {
		s.rejected.Add(1)
		_, _ = io.WriteString(c, answer)
		return
	}
	up, err := net.DialTimeout("tcp", s.opts.Upstream, s.opts.ConnectTimeout)
	if err != nil {
		s.rejected.Add(1)
		_, _ = io.WriteString(c, badGateway)
		return
	}
	if !s.track(up) {
		_ = up.Close()
		return
	}
	defer s.untrack(up)
	defer up.Close()
	if _, err := io.WriteString(c, switched); err != nil {
		return
	}
	if len(rest) > 0 {
		if _, err := up.Write(rest); err != nil {
			return
		}
	}
	s.tunnels.Add(1)
	s.open.Add(1)
	defer s.open.Add(-1)
	cc, uc := c.(*net.TCPConn), up.(*net.TCPConn)
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(cc, uc) // splice(2): (*TCPConn).ReadFrom
		_ = cc.CloseWrite()
		done <- n
	}()
	n, _ := io.Copy(uc, cc)
	_ = uc.CloseWrite()
	s.up.Add(n + int64(len(rest)))
	s.down.Add(<-done)
}

var (
	crlf2      = []byte("\r\n\r\n")
	getPrefix  = []byte("GET ")
	upgradeTCP = []byte("\r\nupgrade: tcp\r\n")
)

// readHead reads c's request head, a GET with a line "Upgrade: tcp"; it
// returns the bytes read past the head, or the answer to give when the
// request cannot be served.
func (s *Server) readHead(c net.Conn) (rest []byte, answer string) {
	_ = c.SetReadDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	buf := make([]byte, 0, 1024)
	var head []byte
	for {
		if len(buf) >= s.opts.MaxHead {
			return nil, tooLarge
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):min(cap(buf), s.opts.MaxHead)])
		from := max(len(buf)-3, 0)
		buf = buf[:len(buf)+n]
		if i := bytes.Index(buf[from:], crlf2); i >= 0 {
			end := from + i + 4
			head, rest = buf[:end], buf[end:]
			break
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, timedOut
			}
			return nil, badRequest
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	if !bytes.HasPrefix(head, getPrefix) || !bytes.Contains(bytes.ToLower(head), upgradeTCP) {
		return nil, badRequest
	}
	return rest, ""
}
