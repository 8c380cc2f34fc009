// Package natsembed runs a NATS server inside the process: the server of
// the gateway's "embedded" NATS configuration (gateway.WithEmbeddedNATS
// takes its Starter), alone or clustered with the other nodes' embedded
// servers by routes. It is a package of its own so that programs using the
// gateway without it do not link the NATS server.
package natsembed

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/internal/repeatlog"
	"github.com/upgate/upgate/internal/slogf"
)

// Server is a NATS server running inside the process.
type Server struct {
	ns *server.Server

	// With a logger: its warnings' repeat state, and the watcher that
	// logs route connections, kicked by the server's route notices.
	log   *slog.Logger
	warn  *repeatlog.State
	kick  chan struct{}
	quit  chan struct{}
	wdone chan struct{}
}

// natsLogPrefix starts the embedded server's log lines.
const natsLogPrefix = "bus: nats server: "

// Start starts a NATS server and waits until it accepts client
// connections (at most ten seconds). Routes to other servers are made in
// the background, retried for as long as the server runs. A listener that
// cannot bind fails Start at once, with net.Listen's error, which names
// the address.
func Start(o bus.ServerOptions) (*Server, error) {
	host, port, err := splitListen(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("natsembed: listen: %w", err)
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       host,
		Port:       port,
		NoSigs:     true,
		MaxPayload: int32(min(o.MaxPayload, 64<<20)),
	}
	if o.ClusterListen != "" || len(o.Routes) > 0 {
		cl := o.ClusterListen
		if cl == "" {
			cl = ":6222"
		}
		chost, cport, err := splitListen(cl)
		if err != nil {
			return nil, fmt.Errorf("natsembed: cluster listen: %w", err)
		}
		name := o.ClusterName
		if name == "" {
			name = bus.DefaultClusterName
		}
		opts.Cluster = server.ClusterOpts{Name: name, Host: chost, Port: cport}
		for _, r := range o.Routes {
			u, err := bus.ParseRoute(r)
			if err != nil {
				return nil, err
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	s := &Server{ns: ns}
	fatal := make(chan error, 1)
	nl := natsLogger{l: slogf.Logger{L: slog.New(slog.DiscardHandler), Prefix: natsLogPrefix}, fatal: fatal}
	if o.Logger != nil {
		s.log = o.Logger
		var warn *slog.Logger
		warn, s.warn = repeatlog.New(o.Logger, o.LogInterval)
		s.kick = make(chan struct{}, 1)
		s.quit = make(chan struct{})
		s.wdone = make(chan struct{})
		nl.l.L, nl.kick = warn, s.kick
		go s.watchRoutes()
	}
	ns.SetLoggerV2(nl, false, false, false)
	go ns.Start()
	// A listener that cannot bind is reported through Fatalf, and the
	// server then never becomes ready: stop waiting at once.
	deadline := time.Now().Add(startTimeout)
	for !ns.ReadyForConnections(readyPoll) {
		select {
		case err := <-fatal:
			s.Shutdown()
			return nil, fmt.Errorf("natsembed: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			s.Shutdown()
			return nil, fmt.Errorf("natsembed: the server did not start listening in %v", startTimeout)
		}
	}
	return s, nil
}

// routeSettle bounds the wait, after a route connection is created, for the
// route to register with a peer (the connection's first exchange).
const routeSettle = 2 * time.Second

// watchRoutes logs at info level each time the server gains a route to
// another server of the cluster (the cluster forms, or forms again after
// a peer came back), and then forgets the warnings of the trouble, so
// that the next warning is logged at once. It runs until Shutdown.
func (s *Server) watchRoutes() {
	defer close(s.wdone)
	peers := 0
	for {
		select {
		case <-s.quit:
			return
		case <-s.kick:
		}
		// A route counts once its connection's first exchange is done:
		// wait for the number of peers to change, or for routeSettle (a
		// further connection to a known peer changes nothing).
		before, deadline := peers, time.Now().Add(routeSettle)
		for {
			n := s.connectedServers()
			if n > peers {
				s.warn.Reset()
				s.log.Info(natsLogPrefix+"cluster route connected", "peers", n)
			}
			peers = n
			if n != before || time.Now().After(deadline) {
				break
			}
			select {
			case <-s.quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// startTimeout bounds Start's wait for the listeners; readyPoll is
// how often it checks whether a listener failed meanwhile.
const (
	startTimeout = 10 * time.Second
	readyPoll    = 50 * time.Millisecond
)

// splitListen parses host:port; port 0 becomes NATS's "random port".
func splitListen(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port, got %q", s)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("want host:port, got %q", s)
	}
	if n == 0 {
		n = server.RANDOM_PORT
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return h, n, nil
}

// ClientURL returns the URL clients connect to, nats://host:port.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Addr returns the client listener's address.
func (s *Server) Addr() net.Addr { return s.ns.Addr() }

// ClusterAddr returns the route listener's address, nil without a cluster.
func (s *Server) ClusterAddr() net.Addr {
	if a := s.ns.ClusterAddr(); a != nil {
		return a
	}
	return nil
}

// ClusterURL returns the route URL other servers list in their Routes,
// nats://host:port, or "" without a cluster.
func (s *Server) ClusterURL() string {
	a := s.ns.ClusterAddr()
	if a == nil {
		return ""
	}
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// NumRoutes returns the number of route connections to other servers.
func (s *Server) NumRoutes() int { return s.ns.NumRoutes() }

// WaitRoutes waits until the server has routes to n other servers, or
// until ctx ends.
func (s *Server) WaitRoutes(ctx context.Context, n int) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.connectedServers() >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsembed: %d of %d routes after waiting: %w", s.connectedServers(), n, ctx.Err())
		case <-t.C:
		}
	}
}

// connectedServers counts the distinct servers this one has routes to (a
// pair of servers may hold several route connections).
func (s *Server) connectedServers() int {
	rz, err := s.ns.Routez(nil)
	if err != nil {
		return 0
	}
	ids := map[string]bool{}
	for _, r := range rz.Routes {
		ids[r.RemoteID] = true
	}
	return len(ids)
}

// Shutdown stops the server and waits for it to end. Clients connected to
// it see their connection drop.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	if s.quit != nil {
		select {
		case <-s.quit:
		default:
			close(s.quit)
			<-s.wdone
			s.warn.Close()
		}
	}
}

// Running reports whether the server is still running.
func (s *Server) Running() bool { return s.ns.Running() }

// InProcessConn returns a client connection to the server that does not
// go through its listener (nats.InProcessServer takes the server).
func (s *Server) InProcessConn() (net.Conn, error) { return s.ns.InProcessConn() }

// Starter starts the embedded servers of buses and gateways:
// gateway.WithEmbeddedNATS(natsembed.Starter{}).
type Starter struct{}

var _ bus.ServerStarter = Starter{}

// StartServer is Start.
func (Starter) StartServer(o bus.ServerOptions) (bus.EmbeddedServer, error) {
	s, err := Start(o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// natsLogger sends the embedded server's log lines to slog, kicks the route
// watcher at each route connection's creation or end, and reports its
// fatal errors (a listener that cannot bind) to fatal as well. Notices are
// logged at debug level, errors at warning level.
type natsLogger struct {
	l     slogf.Logger
	kick  chan<- struct{} // nil without a route watcher
	fatal chan error      // the first fatal error; later ones are only logged
}

func (n natsLogger) Noticef(f string, a ...any) {
	if strings.Contains(f, "Route connection created") ||
		strings.Contains(f, "connection closed") && len(a) > 0 && a[0] == "Route" {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
	n.l.Debugf(f, a...)
}
func (n natsLogger) Warnf(f string, a ...any) { n.l.Warnf(f, a...) }

// Fatalf logs at error level and reports the error without exiting: the
// server's first error argument (net.Listen's, which names the address),
// else the whole line.
func (n natsLogger) Fatalf(f string, a ...any) {
	n.l.Errorf(f, a...)
	err := fmt.Errorf(f, a...)
	for _, x := range a {
		if e, ok := x.(error); ok {
			err = e
			break
		}
	}
	select {
	case n.fatal <- err:
	default:
	}
}

func (n natsLogger) Errorf(f string, a ...any) { n.l.Warnf(f, a...) }
func (n natsLogger) Debugf(f string, a ...any) { n.l.Debugf(f, a...) }
func (n natsLogger) Tracef(f string, a ...any) { n.l.Logf(slog.LevelDebug-4, f, a...) }
