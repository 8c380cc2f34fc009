//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/loop/deflate"
)

// Server is a WebSocket server on a gnet engine. Create it with New, start it
// with Start and stop it with Shutdown.
type Server struct {
	h    Handler
	ctl  ControlHandler // h's, when it implements it
	sh   StreamHandler  // h's, when it implements it
	hh   HandoffHandler // h's, when it implements it
	opts Options

	hsTicks, idleTicks, pingTicks, pongTicks, closeTicks uint32
	deferTicks                                           uint32 // see evloop.postpone
	nloops                                               int

	start time.Time
	zpool deflate.Pool // Compressors for Send (compression.go)
	mu    sync.Mutex
	loops atomic.Pointer[[]*evloop]

	eng      gnet.Engine
	lns      []listener      // listeners.go
	addr     net.Addr        // Options.Addr's listener; nil when off
	tlsAddr  net.Addr        // the TLS listener; nil without TLS
	split    *splitListeners // with two listeners
	bootErr  error
	runErr   error
	booted   chan struct{}
	done     chan struct{}
	idle     chan struct{} // closed once draining and no connection is open
	idleOnce sync.Once
	probes   probeSet // see reach.go
	started  atomic.Bool
	draining atomic.Bool
	stopping atomic.Bool
	open     atomic.Int64
	fd       fdGuard
	nextID   atomic.Uint64
	tlsSlots chan struct{} // handshake slots, with Options.TLS (tls.go)
	tlsConf  *tls.Config   // Options.TLS with the hand-over's key log (tls13.go)
	tlsIdle  uint32        // Options.TLSCipherIdle in ticks; 0: never
}

// New returns a server that will call h, configured by o (see Options for
// the defaults). It does not listen yet. Any goroutine.
func New(h Handler, o Options) (*Server, error) {
	if h == nil {
		return nil, errors.New("loop: nil Handler")
	}
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	res := o.TimerResolution
	s := &Server{
		h:          h,
		opts:       o,
		hsTicks:    ticks(o.HandshakeTimeout, res),
		idleTicks:  ticks(o.IdleTimeout, res),
		pingTicks:  ticks(o.PingInterval, res),
		pongTicks:  ticks(o.PongTimeout, res),
		closeTicks: ticks(o.CloseTimeout, res),
		deferTicks: max(1, uint32(deferStep/res)),
		nloops:     numLoops(o),
		start:      time.Now(),
		booted:     make(chan struct{}),
		done:       make(chan struct{}),
		idle:       make(chan struct{}),
	}
	loops := make([]*evloop, s.nloops)
	for i := range loops {
		loops[i] = newEvloop(s, i)
	}
	s.loops.Store(&loops)
	s.lns = o.listeners()
	s.fd.off()
	s.ctl, _ = h.(ControlHandler)
	s.sh, _ = h.(StreamHandler)
	s.hh, _ = h.(HandoffHandler)
	if o.TLS != nil {
		s.tlsSlots = make(chan struct{}, o.MaxTLSHandshakes)
		s.tlsConf = s.handoverConfig()
		if o.TLSCipherIdle > 0 {
			s.tlsIdle = max(ticks(o.TLSCipherIdle, o.TimerResolution), 1)
		}
	}
	return s, nil
}

// Start opens the listener and runs the engine in the background. It returns
// once the server accepts connections (or failed to start). Any goroutine,
// once.
func (s *Server) Start() error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrServerStarted
	}
	o := s.opts
	nodelay := gnet.TCPNoDelay
	if o.Nagle {
		nodelay = gnet.TCPDelay
	}
	opts := []gnet.Option{
		gnet.WithMulticore(o.Multicore),
		gnet.WithNumEventLoop(o.NumLoops),
		gnet.WithReusePort(o.ReusePort),
		// As net.Listen does on Unix: a restart may bind the port while
		// connections the previous process closed sit in TIME_WAIT. It
		// never lets two listeners share a port (that is ReusePort).
		gnet.WithReuseAddr(true),
		gnet.WithTCPNoDelay(nodelay),
		gnet.WithReadBufferCap(o.ReadBufferCap),
		gnet.WithWriteBufferCap(o.WriteBufferCap),
		gnet.WithSocketRecvBuffer(o.SocketRecvBuffer),
		gnet.WithSocketSendBuffer(o.SocketSendBuffer),
		gnet.WithTicker(true),
		gnet.WithLogger(o.Logger),
	}
	go func() {
		err := s.runEngine(opts)
		s.fd.close()
		if err == nil && s.bootErr == nil && !s.stopping.Load() {
			err = s.stoppedErr()
		}
		s.runErr = err
		close(s.done)
	}()
	select {
	case <-s.booted:
		s.reachLoops()
		return nil
	case <-s.done:
		if s.bootErr != nil {
			return s.bootErr
		}
		if s.runErr != nil {
			return listenError(s.listenTarget(), s.runErr)
		}
		return errors.New("loop: engine stopped while starting")
	}
}

// listenError names the address in an error of a listener that did not
// start, as net.Listen does: "listen tcp 127.0.0.1:8080: bind: address
// already in use". errors.Is and errors.As still see the cause.
func listenError(protoAddr string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return err
	}
	proto, hostport, _ := strings.Cut(protoAddr, "://")
	return &net.OpError{Op: "listen", Net: proto, Addr: listenAddr{proto, hostport}, Err: err}
}

// listenAddr is a listening address as it was given, resolved or not.
type listenAddr struct{ network, addr string }

func (a listenAddr) Network() string { return a.network }
func (a listenAddr) String() string  { return a.addr }

// Addr returns the address of Options.Addr's listener (with the port the
// kernel chose for port 0): the plain listener, or the TLS one when TLS has
// no TLSAddr of its own. Nil when Addr is ListenOff, and before Start (see
// TLSAddr). Any goroutine.
func (s *Server) Addr() net.Addr {
	select {
	case <-s.booted:
		return s.addr
	default:
		return nil
	}
}

// Done is closed when the engine has stopped. Any goroutine.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns why the engine stopped by itself, wrapping ErrEngineStopped,
// once Done is closed without Shutdown (then Shutdown returns it too); nil
// otherwise. Any goroutine.
func (s *Server) Err() error {
	select {
	case <-s.done:
		if errors.Is(s.runErr, ErrEngineStopped) {
			return s.runErr
		}
	default:
	}
	return nil
}

// FDLimit tells how the server shares the process's file descriptors; the
// zero FDLimit before Start or with the guard off. Any goroutine.
func (s *Server) FDLimit() FDLimit {
	select {
	case <-s.booted:
		return s.fd.FDLimit
	default:
		return FDLimit{}
	}
}

// Stats returns the sum of every loop's counters. Any goroutine; it
// allocates the snapshot, which is the caller's.
func (s *Server) Stats() Snapshot {
	p := Snapshot{Rejected: map[int]uint64{}, Closes: map[ws.StatusCode]uint64{}}
	for _, l := range *s.loops.Load() {
		l.stats.addTo(&p)
	}
	p.ListenerPauses = s.fd.pauses.Load()
	return p
}

// Shutdown drains the server: it stops accepting (new connections are closed
// at once), sends close 1001 to every WebSocket connection, ends idle HTTP
// connections (503 for a request in progress), waits for the close
// handshakes up to Options.DrainTimeout or ctx's end, then stops the engine.
// Bytes queued before Shutdown are written before the close frames. Any
// goroutine but an event loop's; later calls wait for the same end.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.started.Load() {
		return ErrServerNotStarted
	}
	select {
	case <-s.booted:
	case <-s.done:
		return s.runErr
	}
	if s.draining.CompareAndSwap(false, true) {
		// Through each loop's inbox: behind every write queued before.
		// A loop not reached yet drains once it is (bind).
		for _, l := range *s.loops.Load() {
			l.post(inboxOp{kind: opExec, fn: l.drainTask})
		}
		if s.open.Load() == 0 {
			s.noteIdle()
		}
		timer := time.NewTimer(s.opts.DrainTimeout)
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-s.idle:
		}
		timer.Stop()
		s.stop()
	}
	select {
	case <-s.done:
		return s.runErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// noteIdle wakes a Shutdown waiting for the last connection to end. Any
// goroutine.
func (s *Server) noteIdle() { s.idleOnce.Do(func() { close(s.idle) }) }

// closedOne counts a connection that ended. Any goroutine.
func (s *Server) closedOne() {
	if s.open.Add(-1) == 0 && s.draining.Load() {
		s.noteIdle()
	}
}

// stop stops the engine; connections still open are closed by gnet.
func (s *Server) stop() {
	s.stopping.Store(true)
	for _, l := range *s.loops.Load() {
		l.closeInbox()
	}
	stopCtx, cancel := context.WithCancel(context.Background())
	go func() { _ = s.eng.Stop(stopCtx) }()
	go func() {
		<-s.done
		cancel()
	}()
}

// drainTask runs on a loop during Shutdown.
func (l *evloop) drainTask() {
	l.sweep(func(c *conn) {
		switch c.phase() {
		case stOpen:
			l.startClose(c, ws.StatusGoingAway, "server shutting down", whyShutdown)
		case stHead:
			if c.tlsSt() != nil && !c.tlsSt().ready {
				c.tlsEnded = true // not a failure
				l.hardClose(c)    // mid TLS handshake: nothing to say
			} else if c.inBuffered() > 0 && c.flags&fProxy == 0 {
				l.respondError(c, errDraining)
			} else {
				l.beginLinger(c)
			}
		case stWait:
			l.waitExpired(c, errDraining)
		}
	})
}

// loopOf returns the state of the loop that owns gc, binding the first
// free one to gnet's loop the first time that loop is seen (gnet does not
// list its loops): loops are indexed in the order they were first seen, at
// Start by reachLoops. Loop goroutine.
func (s *Server) loopOf(gc gnet.Conn) *evloop {
	el := gc.EventLoop()
	for _, l := range *s.loops.Load() {
		if l.bound.Load() && l.el == el {
			return l
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	loops := *s.loops.Load()
	for _, l := range loops {
		if l.bound.Load() && l.el == el {
			return l
		}
	}
	for _, l := range loops {
		if !l.bound.Load() {
			l.bind(el)
			return l
		}
	}
	// More loops than Options asked for: gnet decides, so follow it.
	l := newEvloop(s, len(loops))
	grown := append(loops[:len(loops):len(loops)], l)
	s.loops.Store(&grown)
	l.bind(el)
	return l
}

// events is the Server seen as gnet's event handler; keeping the callbacks
// on this type keeps them out of Server's API.
type events Server

// OnBoot implements gnet.EventHandler: it records the engine and the bound
// address, applies listener options and sets up the descriptor guard. gnet
// calls it once, before the loops start.
func (e *events) OnBoot(eng gnet.Engine) gnet.Action {
	s := (*Server)(e)
	s.eng = eng
	s.fd.off()
	fds, err := s.dupListeners(eng)
	if err == nil {
		for _, fd := range fds {
			if s.opts.DeferAccept > 0 && err == nil {
				err = setDeferAccept(fd, s.opts.DeferAccept)
			}
		}
		kept := false
		if err == nil {
			kept, err = s.fd.boot(s, fds)
		}
		if !kept {
			closeAll(fds)
		}
	}
	if err != nil {
		s.bootErr = err
		return gnet.Shutdown
	}
	close(s.booted)
	return gnet.None
}

func sockaddrTCP(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	}
	return nil
}

// OnShutdown implements gnet.EventHandler: it notes the descriptors in use
// while the connections are still open, for Err.
func (e *events) OnShutdown(gnet.Engine) {
	s := (*Server)(e)
	if !s.stopping.Load() {
		s.fd.noteStop()
	}
}

// OnOpen implements gnet.EventHandler: it attaches a Conn in the head phase
// and arms the handshake timer. Loop goroutine.
func (e *events) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := (*Server)(e)
	if _, ok := gc.Context().(*wakerMark); ok {
		return nil, gnet.None // a loop's wake connection (inbox.go)
	}
	if s.probes.active.Load() && s.probes.take(gc) {
		s.loopOf(gc)
		gc.SetContext(probeMark{})
		return nil, gnet.None // a connection of reachLoops (reach.go)
	}
	if s.draining.Load() {
		return nil, gnet.Close
	}
	secure, ok := s.acceptedTLS(gc)
	if !ok {
		return nil, gnet.Close
	}
	l := s.loopOf(gc)
	n := s.open.Add(1)
	if n > s.fd.max {
		s.closedOne()
		return l.refuseFD(secure)
	}
	s.fd.watch(n)
	s.fd.shed(gc.Fd())
	remote, _ := gc.RemoteAddr().(*net.TCPAddr)
	c := l.newConn(gc, s.nextID.Add(1), remote)
	if s.opts.ProxyProtocol {
		c.flags |= fProxy
	}
	gc.SetContext(c)
	l.stats.ConnsOpen.Add(1)
	l.stats.ConnsTotal.Add(1)
	c.lastRead = l.stamp()
	c.mark = l.tickNow() + s.hsTicks
	l.arm(c)
	if secure {
		c.setKind(xfTLS)
		l.stats.TLSConnsOpen.Add(1)
		l.stats.TLSConnsTotal.Add(1)
		l.startTLS(c)
	}
	return nil, gnet.None
}

// OnTraffic implements gnet.EventHandler: the read callback. Loop goroutine.
func (e *events) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		if w, ok := gc.Context().(*wakerMark); ok {
			_, _ = gc.Discard(gc.InboundBuffered())
			w.l.drainInbox()
			return gnet.None
		}
		_, _ = gc.Discard(gc.InboundBuffered())
		if _, ok := gc.Context().(probeMark); ok {
			return gnet.None // reachLoops closes it from its end
		}
		return gnet.Close
	}
	l := c.l
	l.cur = c
	c.lastRead = l.stamp()
	if c.tlsSt() != nil {
		switch c.phase() {
		case stHead, stOpen, stClosing, stWait:
			if !l.tlsTraffic(c) {
				l.cur = nil
				return gnet.Close
			}
			if !c.tlsSt().ready {
				l.cur = nil
				return gnet.None // the handshake goroutine has the bytes
			}
		default:
			_, _ = gc.Discard(gc.InboundBuffered())
		}
	}
	head := c.phase() == stHead
	act := l.serve(c)
	l.flush()
	l.cur = nil
	l.tlsQuiet(c, head)
	switch c.phase() {
	case stClosed:
		l.releaseAux(c)
		l.endTLS(c)
		l.recycle(c) // when gnet closed it within this callback
		return gnet.Close
	case stFlushing, stLinger:
		l.releaseAux(c)
	}
	return act
}

// serve hands c's input to the read callback of its phase. Loop goroutine,
// with l.cur set to c.
func (l *evloop) serve(c *conn) gnet.Action {
	var act gnet.Action
	switch c.phase() {
	case stHead:
		act = l.head(c)
	case stOpen, stClosing:
		if c.stream() {
			act = l.stream(c, c.peekIn(), 0)
		} else {
			act = l.websocket(c, c.peekIn(), 0)
		}
	case stWait:
		l.waitTraffic(c)
	default:
		c.discardIn(c.inBuffered())
	}
	if st := c.tlsSt(); st != nil && st.err != nil && c.phase() != stClosed {
		// The peer's close_notify, or a TLS error: the input ends here,
		// as at EOF.
		l.hardClose(c)
	}
	return act
}

// OnClose implements gnet.EventHandler: it releases the connection's state
// and reports the end of an upgraded connection to Handler.OnClose. Loop
// goroutine.
func (e *events) OnClose(gc gnet.Conn, err error) gnet.Action {
	s := (*Server)(e)
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.None
	}
	l := c.l
	if c.phase() == stWait {
		l.endWait(c)
	}
	l.tlsClosed(c)
	c.setPhase(stClosed)
	l.unlink(c)
	if c != l.cur {
		l.releaseAux(c)
		l.endTLS(c)
	} else if c.tlsSt() != nil {
		c.tlsSt().closeTransport() // the read callback still uses the plaintext
	}
	s.closedOne()
	l.stats.ConnsOpen.Add(-1)
	if c.kind()&xfTLS != 0 {
		l.stats.TLSConnsOpen.Add(-1)
	}
	why := c.err()
	delete(l.perrs, c)
	if c.flags&fUpgraded == 0 {
		l.recycle(c)
		return gnet.None
	}
	l.stats.WebSocketsOpen.Add(-1)
	if c.stream() {
		l.stats.StreamsOpen.Add(-1)
		switch {
		case why != nil:
		case s.stopping.Load():
			why = ErrShutdown
		case err != nil && !errors.Is(err, io.EOF):
			why = err
		}
		l.reportClose(c, 0, why)
		l.recycle(c)
		return gnet.None
	}
	code := c.code
	if code == 0 {
		code = ws.StatusAbnormalClosure
	}
	if why == nil && c.flags&(fCloseSent|fPeerClose) != fCloseSent|fPeerClose {
		switch {
		case s.stopping.Load():
			why = ErrShutdown
		case err != nil && !errors.Is(err, io.EOF):
			why = err
		default:
			why = ErrAbnormalClosure
		}
	}
	l.stats.closed(code)
	l.reportClose(c, code, why)
	l.recycle(c)
	return gnet.None
}

// OnTick implements gnet.EventHandler. It runs on gnet's ticker goroutine and
// only schedules each loop's timer work onto that loop.
func (e *events) OnTick() (time.Duration, gnet.Action) {
	s := (*Server)(e)
	s.fd.watch(s.open.Load()) // resume once connections closed
	s.fdReport()
	for _, l := range *s.loops.Load() {
		if !l.bound.Load() {
			continue
		}
		if l.tickQueued.CompareAndSwap(false, true) {
			l.tickAt.Store(s.since())
			if l.el.Execute(context.Background(), l) != nil {
				l.tickQueued.Store(false)
			}
		}
	}
	return s.opts.TimerResolution, gnet.None
}
