package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/gateway/tlscert"
	"github.com/upgate/upgate/internal/slogf"
	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/parser"
	"github.com/upgate/upgate/tunnel"
)

// Option configures a Gateway beyond its Config.
type Option func(*Gateway)

// WithLogger sets the logger. By default the gateway logs warnings and
// errors to slog.Default(). Nothing is logged per message; connection
// events are logged at debug level.
func WithLogger(l *slog.Logger) Option {
	return func(g *Gateway) {
		if l != nil {
			g.log = l
		}
	}
}

// WithHandler sets the default Handler of the routes whose Behaviour is
// Custom: those whose Route.Handler is nil, as routes read from a file are.
// A route's own Handler wins. New fails when a Custom route has neither.
func WithHandler(h Handler) Option { return func(g *Gateway) { g.handler = h } }

// WithEmbeddedNATS gives the gateway the means to run a NATS server inside
// the process, as Config.NATS.Servers [embedded] asks: natsembed.Starter{}.
// New fails when that configuration is given without it. The server is
// started by Start, before the listeners, and stopped after the bus when
// the gateway stops. Keeping the server in a package of its own keeps it
// out of the programs that only join external NATS servers.
func WithEmbeddedNATS(s bus.ServerStarter) Option { return func(g *Gateway) { g.natsStarter = s } }

// Gateway is a WebSocket gateway: the public listener on an event-loop
// server, routes with their built-in behaviours, limits, a connection
// registry and a topic registry, and the admin HTTP listener. Create it with
// New, then Start; stop it with Shutdown.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	handler   Handler         // WithHandler's: the default of Custom routes
	tunnels   *tunnel.Reactor // the tcp and websockify routes' (tunnel.go); nil without them
	protocols []Protocol      // WithProtocol's

	natsStarter bus.ServerStarter // WithEmbeddedNATS

	// wrapLoop, when set (by tests), wraps the loop Handler.
	wrapLoop func(loop.Handler) loop.Handler

	routes   routeTable
	srv      *loop.Server
	conns    *registry
	topics   *topicRegistry
	bus      *bus.Bus     // nil without Config.NATS
	queues   []loopQueue  // by loop: publishes queued for it (fanout.go)
	zpub     zpublisher   // compression of publishes (compress.go)
	bucket   *tokenBucket // nil: no rate limit
	maxConns int64
	open     atomic.Int64 // connection slots taken (Limits.MaxConnections)
	trusted  []netip.Prefix

	authHeaders []string // lower-case names of the header fields sent to authorisation

	stats                   gatewayStats
	health, ready, unrouted routeStats

	metrics        *prometheus.Registry
	metricsHandler http.Handler // GET /metrics of the admin API
	adminMux       http.Handler // the admin API (AdminHandler)

	certs     *tlscert.Store // the TLS listener's certificates; nil without one (tls.go)
	stopCerts func()         // stops the certificate files' watch; nil when none

	admin   *http.Server
	adminLn net.Listener

	mu        sync.Mutex
	started   bool
	stopping  bool
	draining  atomic.Bool
	stopErr   error
	done      chan struct{}
	closeDone sync.Once
}

// New builds a gateway from cfg: it normalizes and validates cfg (a
// *ConfigError names the first bad key) and prepares everything, but
// listens nowhere until Start.
func New(cfg Config, opts ...Option) (*Gateway, error) {
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:      cfg,
		log:      slog.New(warnHandler{slog.Default().Handler()}),
		conns:    newRegistry(),
		maxConns: int64(cfg.Limits.MaxConnections),
		trusted:  parsePrefixes(cfg.TrustedProxies),
		done:     make(chan struct{}),
	}
	for _, o := range opts {
		o(g)
	}
	g.health.label, g.ready.label, g.unrouted.label = "/healthz", "/readyz", "none"
	g.routes = newRouteTable(cfg.Routes, cfg.Limits.MaxMessage, cfg.Deflate)
	reg, err := protocolRegistry(g.protocols)
	if err != nil {
		return nil, err
	}
	for i, rt := range g.routes.all {
		rt.g = g
		if err := rt.setProtocols(reg); err != nil {
			return nil, &ConfigError{Key: fmt.Sprintf("routes[%d].protocols", i), Reason: err.Error()}
		}
		if rt.kind == kindCustom && !rt.setHandler(g.handler) {
			return nil, &ConfigError{Key: fmt.Sprintf("routes[%d].behaviour", i),
				Reason: "a custom route needs a Handler: set Route.Handler or give New the option WithHandler"}
		}
	}
	if cfg.NATS.embedded() && g.natsStarter == nil {
		return nil, &ConfigError{Key: "nats.servers[0]", Reason: "embedded needs the embedded NATS server (WithEmbeddedNATS)"}
	}
	if cfg.Limits.ConnectRate > 0 {
		g.bucket = newTokenBucket(cfg.Limits.ConnectRate, cfg.Limits.ConnectBurst, time.Now())
	}
	if err := g.newCertStore(); err != nil {
		return nil, err
	}
	srv, err := loop.New(g.loopHandler(), g.loopOptions())
	if err != nil {
		return nil, err
	}
	g.srv = srv
	g.topics = newTopicRegistry(srv.Loops())
	g.queues = newLoopQueues(g, srv.Loops())
	if cfg.NATS.Enabled() {
		if err := g.newBus(); err != nil {
			return nil, err
		}
	}
	g.newMetrics()
	g.adminMux = g.newAdminHandler()
	return g, nil
}

// loopOptions maps the Config onto the event loop's options.
func (g *Gateway) loopOptions() loop.Options {
	c := g.cfg
	o := loop.Options{
		Addr:             c.Listen,
		Multicore:        c.Loops == 0,
		NumLoops:         c.Loops,
		ReusePort:        c.ReusePort,
		ProxyProtocol:    c.ProxyProtocol,
		Head:             parser.Limits{MaxHeadBytes: c.Limits.MaxHeadBytes, MaxFields: c.Limits.MaxHeaderFields},
		MaxMessage:       c.Limits.MaxMessage,
		MaxOutbound:      c.Limits.MaxOutbound,
		HandshakeTimeout: c.Timeouts.Handshake,
		IdleTimeout:      c.Timeouts.Idle,
		PingInterval:     c.Timeouts.Ping,
		PongTimeout:      c.Timeouts.Pong,
		CloseTimeout:     c.Timeouts.Close,
		DrainTimeout:     c.Timeouts.Drain,
		FDReserve:        c.Limits.FDReserve,
		ConnPool:         c.Limits.ConnPool,
		KeepContext:      true, // connState is reused with the loop's (handler.go)
		Logger:           slogf.Logger{L: g.log, Prefix: "gateway: engine: "},
	}
	g.tlsLoopOptions(&o)
	return o
}

// Start opens the admin listener (unless Config.Admin is "off") and the
// public listener, and returns once both accept connections. Any goroutine,
// once.
func (g *Gateway) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.stopping:
		return ErrStopped
	case g.started:
		return ErrStarted
	}
	if g.bus != nil {
		// The embedded NATS server listens, and the bus connects (or keeps
		// trying in the background), before any client comes.
		if err := g.bus.Start(); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	if g.cfg.Admin != "off" {
		ln, err := net.Listen("tcp", g.cfg.Admin)
		if err != nil {
			g.closeBus()
			return fmt.Errorf("gateway: admin listener: %w", err)
		}
		g.adminLn = ln
		g.admin = &http.Server{
			Handler:           g.adminMux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		}
		go func() {
			if err := g.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error("gateway: admin listener failed", "err", err)
			}
		}()
	}
	if err := g.startTunnels(); err != nil {
		if g.admin != nil {
			_ = g.admin.Close()
		}
		g.closeBus()
		return fmt.Errorf("gateway: tunnels: %w", err)
	}
	if err := g.srv.Start(); err != nil {
		if g.admin != nil {
			_ = g.admin.Close()
		}
		g.closeBus()
		_ = g.stopTunnels(context.Background())
		return fmt.Errorf("gateway: public listener: %w", err)
	}
	g.started = true
	g.watchCerts()
	go g.watch()
	attrs := []any{"listen", ListenOff}
	if a := g.srv.Addr(); a != nil {
		attrs[1] = a.String()
	}
	if a := g.srv.TLSAddr(); a != nil {
		attrs = append(attrs, "tls_listen", a.String(), "certificates", len(g.certs.Certificates()))
	}
	attrs = append(attrs, "routes", len(g.routes.all))
	if f := g.srv.FDLimit(); f.Limit > 0 {
		attrs = append(attrs, "fd_limit", f.Limit, "max_tcp_connections", f.MaxConns)
		if int64(f.MaxConns) < g.maxConns {
			g.log.Warn("gateway: limits.max_connections is more than the file descriptor limit allows: "+
				"connections past that are answered 503; raise LimitNOFILE (ulimit -n) or lower max_connections",
				"max_connections", g.maxConns, "fd_limit", f.Limit, "fd_reserve", f.Reserve,
				"fds_in_use", f.InUse, "connections_possible", f.MaxConns)
		}
	}
	if g.adminLn != nil {
		attrs = append(attrs, "admin", g.adminLn.Addr().String())
	}
	if g.bus != nil {
		attrs = append(attrs, "node", g.bus.Node(), "bus", g.bus.State().String())
		if s := g.bus.Server(); s != nil {
			attrs = append(attrs, "nats", s.ClientURL())
		}
	}
	g.log.Info("gateway: started", attrs...)
	return nil
}

// closeBus closes the bus, if any: queued messages (the close events of
// the connections that just ended) are published first, within a bound.
func (g *Gateway) closeBus() {
	if g.bus != nil {
		g.bus.Close(natsShutdownFlushBudget)
	}
}

// watch waits for the engine to stop, expectedly or not, then stops the
// admin listener and marks the gateway done.
func (g *Gateway) watch() {
	<-g.srv.Done()
	g.mu.Lock()
	expected := g.stopping
	g.mu.Unlock()
	if !expected {
		g.draining.Store(true)
		g.log.Error("gateway: event loop engine stopped unexpectedly", "err", g.srv.Err())
	}
	g.closeBus()
	if g.stopCerts != nil {
		g.stopCerts()
	}
	if g.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if g.admin.Shutdown(ctx) != nil {
			_ = g.admin.Close()
		}
		cancel()
	}
	g.log.Info("gateway: stopped")
	g.closeDone.Do(func() { close(g.done) })
}

// Addr returns the public plain listener's address (with the port chosen
// for port 0), or nil before Start and when Config.Listen is off (see
// TLSAddr). Any goroutine.
func (g *Gateway) Addr() net.Addr { return g.srv.Addr() }

// AdminAddr returns the admin listener's address, or nil when the admin
// listener is off or not started. Any goroutine.
func (g *Gateway) AdminAddr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.adminLn == nil {
		return nil
	}
	return g.adminLn.Addr()
}

// Done is closed when the gateway has fully stopped: after Shutdown, or when
// the event loop engine died. Any goroutine.
func (g *Gateway) Done() <-chan struct{} { return g.done }

// Shutdown stops the gateway gracefully: /readyz answers 503 at once (and,
// for Timeouts.DrainDelay, the gateway keeps serving so that load balancers
// notice), then the public listener stops accepting, every WebSocket
// connection gets a close frame with 1001, and Shutdown waits for the close
// handshakes up to Timeouts.Drain or ctx's end, whichever comes first;
// connections still open then are dropped. The admin listener stops last.
// It returns ctx.Err() when ctx ended first, else the engine's error.
//
// Any goroutine except an event loop's (not from a Handler callback).
// Idempotent: later calls wait for the same end.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	first := !g.stopping
	g.stopping = true
	started := g.started
	g.mu.Unlock()
	if !started {
		g.draining.Store(true)
		g.closeDone.Do(func() { close(g.done) })
		return nil
	}
	if first {
		g.draining.Store(true)
		g.log.Info("gateway: draining", "connections", g.Connections(), "delay", g.cfg.Timeouts.DrainDelay)
		if d := g.cfg.Timeouts.DrainDelay; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		err := g.srv.Shutdown(ctx)
		if terr := g.stopTunnels(ctx); err == nil {
			err = terr
		}
		if err != nil && ctx.Err() == nil {
			g.mu.Lock()
			g.stopErr = err
			g.mu.Unlock()
		}
	}
	select {
	case <-g.done:
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// warnHandler passes records at warning level and above.
type warnHandler struct{ slog.Handler }

func (h warnHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return warnHandler{h.Handler.WithAttrs(a)}
}

func (h warnHandler) WithGroup(name string) slog.Handler {
	return warnHandler{h.Handler.WithGroup(name)}
}
