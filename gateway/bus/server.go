package bus

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// The NATS servers a bus joins (Options.URLs), or the one it runs inside
// the process (Options.Embedded). This package holds only the client: an
// embedded server is started through a ServerStarter, which package
// natsembed implements, so that the programs that join external servers
// do not link the NATS server.

// ServerStarter starts a NATS server inside the process. Implemented by
// natsembed.Starter.
type ServerStarter interface {
	StartServer(o ServerOptions) (EmbeddedServer, error)
}

// EmbeddedServer is a NATS server running inside the process, as the bus
// uses it: it connects to it in process and shuts it down after itself.
type EmbeddedServer interface {
	// ClientURL returns the URL backends connect to, nats://host:port.
	ClientURL() string
	// ClusterURL returns the route URL the other servers of the cluster
	// list in their Routes, nats://host:port, or "" without a cluster.
	ClusterURL() string
	// InProcessConn returns a client connection to the server that does
	// not go through its listener (nats.InProcessConnProvider).
	InProcessConn() (net.Conn, error)
	// Shutdown stops the server and waits for it to end.
	Shutdown()
}

// DefaultClusterName is the cluster name of embedded servers.
const DefaultClusterName = "upgate"

// ServerOptions configure a NATS server embedded in the process: what the
// bus gives its ServerStarter.
type ServerOptions struct {
	// Name is the server's name in the cluster (the node id is a good
	// choice); it must be unique among the cluster's servers.
	Name string
	// Listen is the client listener, host:port; port 0 picks a free port.
	// Backends connect here.
	Listen string
	// ClusterListen is the route listener, host:port (port 0 picks one); ""
	// with no Routes makes a single server.
	ClusterListen string
	// ClusterName names the cluster; every server of it must use the same.
	ClusterName string
	// Routes are the route listeners of the other servers of the cluster
	// (nats://host:port, or host:port). Listing this server itself too is
	// harmless, so every node may be given the same list.
	Routes []string
	// MaxPayload is the largest message the server takes, in bytes; zero
	// keeps the NATS default (1 MiB).
	MaxPayload int
	// Logger receives the server's log lines: notices at debug level,
	// warnings and errors at warning level, a repeated warning (a peer
	// that stays down) once and then summarised once per LogInterval; at
	// info level, each time a route to another server of the cluster
	// connects. Nil discards them.
	Logger *slog.Logger
	// LogInterval is how often a repeated warning is summarised; zero
	// means DefaultLogInterval.
	LogInterval time.Duration
}

// ParseRoute parses a cluster route of an embedded server
// (ServerOptions.Routes); a bare host:port means nats://host:port.
func ParseRoute(r string) (*url.URL, error) {
	if !strings.Contains(r, "://") {
		r = "nats://" + r
	}
	u, err := url.Parse(r)
	if err != nil || u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("bus: cluster route %q: want nats://host:port", r)
	}
	return u, nil
}

// ValidServerURL checks a NATS server URL as the client takes it:
// nats://host:port, tls://, ws://, wss://, or host:port.
func ValidServerURL(s string) error {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("want nats://host:port, got %q", s)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
		return nil
	}
	return fmt.Errorf("want a nats://, tls://, ws:// or wss:// URL, got %q", s)
}

// ValidRoute checks a cluster route as ParseRoute takes it.
func ValidRoute(s string) error {
	_, err := ParseRoute(s)
	return err
}
