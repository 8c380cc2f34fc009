//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"github.com/upgate/upgate/loop/frame"
	"github.com/upgate/upgate/parser"
)

// Default values of Options. Zero in a field means its default; a negative
// duration disables the timer where the field says so.
const (
	DefaultAddr             = "tcp://:8080"
	DefaultReadBufferCap    = 64 << 10
	DefaultWriteBufferCap   = 64 << 10
	DefaultMaxMessage       = frame.DefaultMaxMessage
	DefaultMaxOutbound      = 4 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 2 * time.Minute
	DefaultPingInterval     = 30 * time.Second
	DefaultPongTimeout      = 10 * time.Second
	DefaultCloseTimeout     = 3 * time.Second
	DefaultDrainTimeout     = 10 * time.Second
	DefaultTimerResolution  = 100 * time.Millisecond
	DefaultMaxTLSHandshakes = 1024
	DefaultTLSCipherIdle    = 2 * time.Second
	DefaultConnPool         = 4096
)

// ListenOff as Options.Addr turns the plain listener off: only
// Options.TLSAddr listens.
const ListenOff = "off"

// Options configure a Server. The zero value is usable: every limit has a
// safe default. Options are read once, by New.
type Options struct {
	// Addr is the listening address, "tcp://host:port" or "host:port".
	// Port 0 picks a free port; Server.Addr tells which. Default DefaultAddr.
	// The listening socket has SO_REUSEADDR, as net.Listen's has: a server
	// restarted at once binds its port even while connections the previous
	// one closed wait in TIME_WAIT (another listener on the port still
	// fails Start). With TLS and no TLSAddr this listener speaks TLS; with
	// TLSAddr it stays plain, or is turned off by ListenOff.
	Addr string

	// TLSAddr is a second listener, in the form of Addr, that speaks TLS
	// while Addr stays plain: both share the event loops, and each
	// connection is served as its listener says (wss:// on this one, ws://
	// on Addr, e.g. for health checks). It needs TLS, and an address other
	// than Addr's (both may be port 0). Addr ListenOff leaves this the only
	// listener. Server.TLSAddr tells the address bound.
	TLSAddr string

	// Multicore runs one event loop per CPU; NumLoops, when positive, sets
	// the number of loops instead. Default: one loop.
	Multicore bool
	NumLoops  int

	// ReusePort gives each event loop its own listening socket with
	// SO_REUSEPORT, letting the kernel spread accepts over the loops. It
	// needs an explicit port: with port 0 every loop would get another one.
	ReusePort bool

	// DeferAccept sets TCP_DEFER_ACCEPT (Linux): the kernel hands over a
	// connection only once its first bytes arrived, or after this long.
	// Zero leaves it off. It cannot be combined with ReusePort and several
	// loops, whose extra listeners gnet does not expose.
	DeferAccept time.Duration

	// Nagle leaves Nagle's algorithm on. By default TCP_NODELAY is set:
	// frames leave as soon as they are written.
	Nagle bool

	// ReadBufferCap is the size of each loop's read buffer: the most bytes
	// one read callback sees. Default DefaultReadBufferCap.
	ReadBufferCap int
	// WriteBufferCap is how far a connection's outbound ring buffer grows
	// before gnet chains further bytes in a list. Default DefaultWriteBufferCap.
	WriteBufferCap int
	// SocketRecvBuffer and SocketSendBuffer set SO_RCVBUF and SO_SNDBUF when
	// positive; zero keeps the kernel's defaults.
	SocketRecvBuffer int
	SocketSendBuffer int

	// ProxyProtocol expects every connection to start with a PROXY
	// protocol header (version 1 or 2, as HAProxy specifies it), as an L4
	// load balancer sends it before the client's bytes. The header's
	// source address becomes Conn.ClientAddr (RemoteAddr stays the
	// balancer's); a LOCAL header (the balancer's own health check) keeps
	// the TCP peer's. The bytes behind the header are read at once as the
	// request head. A connection that does not begin with a valid header is
	// closed without a response and counted in Stats.ProxyErrors; one whose
	// header is not complete within HandshakeTimeout is closed without a
	// response too. Only set it when every peer of the listener is such a
	// balancer: anyone else could claim any address. It applies to every
	// listener: on the TLS listener the header comes before the TLS
	// ClientHello (as AWS NLB and HAProxy send it), and the handshake
	// starts behind it.
	ProxyProtocol bool

	// TLS, when set, makes the TLS listener speak TLS (wss://): TLSAddr's,
	// or Addr's when TLSAddr is empty. Every connection of that listener
	// first completes a TLS handshake with this configuration,
	// then carries HTTP and WebSocket inside it. The handshake runs on a
	// goroutine of its own (crypto/tls needs a blocking read there); the
	// rest runs on the event loop. HandshakeTimeout covers the TLS
	// handshake and the request head together, and may not be disabled.
	// Nil: plain TCP only.
	TLS *tls.Config
	// MaxTLSHandshakes bounds the TLS handshakes in progress at once (each
	// holds a goroutine and crypto/tls's state). A handshake begins once
	// the client's first record (its ClientHello) is whole: a connection
	// whose ClientHello comes beyond the bound is closed then, and counted
	// in Stats.TLSRefused; a silent or slow client takes no slot. Default
	// DefaultMaxTLSHandshakes.
	MaxTLSHandshakes int
	// TLSStdRecords keeps crypto/tls's *tls.Conn for the life of every
	// TLS 1.3 connection instead of handing it over to the loop's own
	// record layer (package tlsrec) after the handshake, as TLS 1.2
	// connections always do: some 4 to 7 KB more per idle connection, and
	// a record buffer of some 18 KB for good once a large record arrived.
	TLSStdRecords bool
	// TLSCipherIdle is how long a TLS 1.3 connection on the loop's record
	// layer goes without a record either way before it drops its ciphers
	// (some 2.5 KB with AES-GCM), rebuilt at its next record in about a
	// microsecond. Default DefaultTLSCipherIdle; negative keeps them.
	TLSCipherIdle time.Duration
	// TLSFailureOf, when set, names the reason of a failed handshake's
	// error before the loop's own reading of it: an error of a callback of
	// the tls.Config (a certificate store refusing an unknown server name
	// is TLSFailUnknownSNI, which the loop cannot tell by itself). ok false
	// leaves the error to the loop. Called on the loop goroutine.
	TLSFailureOf func(err error) (reason TLSFailure, ok bool)

	// Head bounds the request head (size and number of header fields).
	// Zero fields take the parser's defaults (8 KiB, 100 fields).
	Head parser.Limits

	// MaxMessage is the largest WebSocket message accepted, in bytes over
	// all its fragments; a larger one closes the connection with 1009.
	// Handler.OnRequest may set another limit per connection. At most
	// 4 GiB - 1. Default DefaultMaxMessage (1 MiB).
	MaxMessage int64

	// MaxOutbound bounds the bytes waiting to be written to one connection
	// (gnet's outbound buffer plus writes queued from other goroutines).
	// A send finding the queue over the bound closes the connection with
	// 1008 (policy violation) and is counted as a slow consumer, so one peer
	// that does not read holds at most about MaxOutbound plus one message.
	// At most 1 GiB. Default DefaultMaxOutbound (4 MiB).
	MaxOutbound int

	// ConnPool is how many closed connections' state (about 144 bytes
	// each) every event loop keeps to give to the connections it accepts
	// next, so that a handshake allocates nothing in upgate's code while
	// connections come and go. The kept state is memory the loop does not
	// give back after a wave of closes. Negative: keep none. At most
	// 1 << 20. Default DefaultConnPool (4096).
	ConnPool int

	// KeepContext keeps the value given to Conn.SetContext with the
	// connection's state when the loop reuses that state for a later
	// connection (ConnPool), instead of dropping it: a Handler that keeps
	// its own per-connection state there finds it again in the next
	// OnRequest on that state (Request.Conn.Context()) and may reuse it,
	// so that it allocates nothing per handshake either. Such a Handler
	// must reset what it reuses, and read it from other goroutines only
	// through fields that are safe to race with that reset, checking
	// Conn.Current after the read (the gateway does so).
	KeepContext bool

	// HandshakeTimeout bounds the time from accept (or from the previous
	// response on a keep-alive connection) to a complete request head (and
	// PROXY protocol header, with ProxyProtocol; and TLS handshake, with
	// TLS, closed without a response when it is not done in time); a
	// connection that misses it is answered 408 and closed (an idle
	// keep-alive connection, with no new request begun, is closed without
	// a response). Negative disables it (not recommended: slowloris).
	// Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes an open WebSocket connection (1001) that received
	// nothing, not even a pong, for this long. Negative disables it.
	// Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// PingInterval is how long an open connection may stay silent before the
	// server pings it; PongTimeout is how long it then has to send anything
	// (normally the pong) before the TCP connection is dropped. A negative
	// PingInterval disables pings. Defaults DefaultPingInterval and
	// DefaultPongTimeout.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// CloseTimeout bounds each closing step: waiting for the peer's close
	// frame after the server sent one, and waiting for the final bytes to be
	// written and the peer to close TCP after the server's last frame or
	// error response. Default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// DrainTimeout bounds Shutdown's wait for close handshakes before the
	// engine stops. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// TimerResolution is the tick of the per-loop timing wheel: timeouts
	// fire up to about two ticks late, never early. Default
	// DefaultTimerResolution.
	TimerResolution time.Duration

	// FDReserve is how many file descriptors below RLIMIT_NOFILE the
	// server keeps free: it holds at most the limit, less the reserve, less
	// the descriptors in use at Start (Server.FDLimit tells the numbers),
	// and answers connections beyond with 503 and Retry-After, closing them
	// at once, so that an accept never fails for want of a descriptor,
	// which would stop the engine. A quarter of the reserve bounds the
	// listen backlog near that limit; the rest is for the descriptors the
	// process opens after Start. Zero means 1/32 of the limit, at least 64
	// and at most 4096; negative turns the guard off. Linux only.
	FDReserve int

	// Logger receives gnet's log lines, and the server's own warnings (at
	// most one line per second about refused connections). Default: errors go to the standard
	// logger, other levels are dropped.
	Logger Logger
}

// Logger is the logging interface of gnet's engine.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// quietLogger drops everything below errors.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any)          {}
func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Warnf(string, ...any)           {}
func (quietLogger) Errorf(format string, a ...any) { log.Printf("loop: gnet: "+format, a...) }
func (quietLogger) Fatalf(format string, a ...any) { log.Fatalf("loop: gnet: "+format, a...) }

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// normalize fills in defaults and checks the combination.
func (o Options) normalize() (Options, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.ReadBufferCap <= 0 {
		o.ReadBufferCap = DefaultReadBufferCap
	}
	if o.WriteBufferCap <= 0 {
		o.WriteBufferCap = DefaultWriteBufferCap
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.MaxOutbound <= 0 {
		o.MaxOutbound = DefaultMaxOutbound
	}
	if o.MaxOutbound > maxAsyncFrame {
		o.MaxOutbound = maxAsyncFrame
	}
	switch {
	case o.ConnPool == 0:
		o.ConnPool = DefaultConnPool
	case o.ConnPool < 0:
		o.ConnPool = 0
	case o.ConnPool > 1<<20:
		o.ConnPool = 1 << 20
	}
	defaultDuration(&o.HandshakeTimeout, DefaultHandshakeTimeout)
	defaultDuration(&o.IdleTimeout, DefaultIdleTimeout)
	defaultDuration(&o.PingInterval, DefaultPingInterval)
	if o.PongTimeout <= 0 {
		o.PongTimeout = DefaultPongTimeout
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.TimerResolution <= 0 {
		o.TimerResolution = DefaultTimerResolution
	}
	if o.TimerResolution < time.Millisecond {
		o.TimerResolution = time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
	if o.MaxTLSHandshakes <= 0 {
		o.MaxTLSHandshakes = DefaultMaxTLSHandshakes
	}
	if o.TLSCipherIdle == 0 {
		o.TLSCipherIdle = DefaultTLSCipherIdle
	}
	if err := o.checkListeners(); err != nil {
		return o, err
	}
	if o.TLS != nil && o.HandshakeTimeout < 0 {
		// A stalled handshake would hold its goroutine and its slot for ever.
		return o, fmt.Errorf("loop: TLS needs a HandshakeTimeout")
	}
	if o.ReusePort && (o.Multicore || o.NumLoops > 1) {
		if o.DeferAccept > 0 {
			return o, fmt.Errorf("loop: DeferAccept cannot be combined with ReusePort and several event loops")
		}
		for _, a := range []string{o.Addr, o.TLSAddr} {
			if a != "" && a != ListenOff && anyPort(a) {
				return o, fmt.Errorf("loop: ReusePort with several event loops needs an explicit port, not %q", a)
			}
		}
	}
	return o, nil
}

// checkListeners checks Addr and TLSAddr together.
func (o Options) checkListeners() error {
	switch {
	case o.TLSAddr != "" && o.TLS == nil:
		return fmt.Errorf("loop: TLSAddr %q needs TLS", o.TLSAddr)
	case o.TLSAddr == ListenOff:
		return fmt.Errorf("loop: TLSAddr cannot be %q: leave it empty for no TLS listener", ListenOff)
	case o.Addr == ListenOff && o.TLSAddr == "":
		return fmt.Errorf("loop: Addr %q needs TLSAddr: the server would listen nowhere", ListenOff)
	case o.Addr != ListenOff && o.TLSAddr != "":
		an, ah := splitProtoAddr(o.Addr)
		tn, th := splitProtoAddr(o.TLSAddr)
		if an == tn && ah == th && !anyPort(o.Addr) {
			return fmt.Errorf("loop: Addr and TLSAddr are the same address %q", o.TLSAddr)
		}
	}
	return nil
}

// splitProtoAddr returns a listening address's network, as gnet names a
// listener's once it is open ("tcp" for tcp4 and tcp6 too), and its
// host:port, as gnet's Engine.DupListener takes them.
func splitProtoAddr(a string) (network, hostport string) {
	network, hostport, ok := strings.Cut(a, "://")
	if !ok {
		return "tcp", a
	}
	switch network {
	case "tcp4", "tcp6":
		network = "tcp"
	}
	return network, hostport
}

// anyPort reports whether a listening address asks for a port of the
// kernel's choice (port 0 or none).
func anyPort(a string) bool {
	_, hostport := splitProtoAddr(a)
	_, port, err := net.SplitHostPort(hostport)
	return err == nil && (port == "0" || port == "")
}

// ticks converts a duration to timer ticks for deadlines: rounded up, plus
// one because a loop's current tick lags the clock by up to one tick, so a
// timeout never fires early (and at most about one tick late). 0 for a
// disabled (negative) duration.
func ticks(d, res time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	n := (d+res-1)/res + 1
	if n > 1<<30 {
		n = 1 << 30
	}
	return uint32(n)
}
