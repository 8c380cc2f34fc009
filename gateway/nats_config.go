package gateway

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/upgate/upgate/gateway/bus"
)

// NATS joins gateway nodes into a fleet over NATS. Package bus documents
// the subjects and headers: the wire contract with backends. Without
// Servers the gateway has no bus and pub/sub stays inside the process.
type NATS struct {
	// Servers are the NATS servers to join (nats://host:port; tls://,
	// ws:// and wss:// too), or the single word "embedded": a NATS server
	// runs inside the process, listening on Listen for backends, and, with
	// Cluster, routed to the other nodes' embedded servers.
	Servers []string `yaml:"servers"`
	// Listen is the embedded server's client listener, where backends
	// connect. Default 127.0.0.1:4222; it has no authentication: keep it on
	// loopback or a private network.
	Listen string `yaml:"listen"`
	// Cluster lists the route listeners (ClusterListen) of the other
	// nodes' embedded servers, nats://host:port. Every node may be given
	// the same list, itself included. Needs Servers: [embedded].
	Cluster []string `yaml:"cluster"`
	// ClusterListen is the embedded server's route listener. Default
	// 0.0.0.0:6222 when Cluster is set; without Cluster and without it the
	// embedded server is alone.
	ClusterListen string `yaml:"cluster_listen"`
	// ClusterName names the cluster of embedded servers. Default "upgate".
	ClusterName string `yaml:"cluster_name"`
	// Prefix starts every subject. Default "upgate".
	Prefix string `yaml:"prefix"`
	// NodeID names this node in the fleet: connection ids are
	// "<node>.<n>". It must be unique among the nodes. Default: eight
	// random characters drawn at each start, so that ids never repeat.
	NodeID string `yaml:"node_id"`
	// AuthTimeout bounds the wait for the answer to an authorisation
	// request (routes with Auth); then the handshake is answered 401.
	// Default 2s.
	AuthTimeout time.Duration `yaml:"auth_timeout"`
	// AuthHeaders are the request header fields copied into authorisation
	// requests. Default Authorization, Cookie, Origin, User-Agent and
	// Sec-WebSocket-Protocol.
	AuthHeaders []string `yaml:"auth_headers"`
	// Queue bounds the messages waiting to be published on the bus; beyond
	// it they are dropped and counted (queue_full). Default 65536.
	Queue int `yaml:"queue"`
}

// Defaults of NATS.
const (
	// Embedded is the NATS.Servers value that embeds a NATS server.
	Embedded                = "embedded"
	DefaultNATSListen       = "127.0.0.1:4222"
	DefaultNATSClusterPort  = "0.0.0.0:6222"
	DefaultNATSClusterName  = bus.DefaultClusterName
	DefaultNATSPrefix       = bus.DefaultPrefix
	DefaultAuthTimeout      = bus.DefaultAuthTimeout
	DefaultNATSQueue        = bus.DefaultQueueLen
	natsShutdownFlushBudget = 2 * time.Second
)

// DefaultAuthHeaders are the header fields an authorisation request carries
// by default.
func DefaultAuthHeaders() []string {
	return []string{"Authorization", "Cookie", "Origin", "User-Agent", "Sec-WebSocket-Protocol"}
}

// Enabled reports whether the gateway joins a bus.
func (n *NATS) Enabled() bool { return len(n.Servers) > 0 }

// embedded reports whether the gateway runs its own NATS server.
func (n *NATS) embedded() bool {
	return len(n.Servers) == 1 && strings.EqualFold(n.Servers[0], Embedded)
}

func (n *NATS) normalize() {
	if n.Listen == "" {
		n.Listen = DefaultNATSListen
	}
	if n.ClusterListen == "" && len(n.Cluster) > 0 {
		n.ClusterListen = DefaultNATSClusterPort
	}
	if n.ClusterName == "" {
		n.ClusterName = DefaultNATSClusterName
	}
	if n.Prefix == "" {
		n.Prefix = DefaultNATSPrefix
	}
	if n.AuthTimeout == 0 {
		n.AuthTimeout = DefaultAuthTimeout
	}
	if n.AuthHeaders == nil {
		n.AuthHeaders = DefaultAuthHeaders()
	}
	if n.Queue == 0 {
		n.Queue = DefaultNATSQueue
	}
}

func (n *NATS) validate() error {
	bad := func(key, format string, a ...any) error {
		return &ConfigError{Key: "nats." + key, Reason: fmt.Sprintf(format, a...)}
	}
	for i, s := range n.Servers {
		if strings.EqualFold(s, Embedded) {
			if len(n.Servers) > 1 {
				return bad(fmt.Sprintf("servers[%d]", i), "embedded stands alone: either a NATS server inside the process or servers to join")
			}
			continue
		}
		if err := bus.ValidServerURL(s); err != nil {
			return bad(fmt.Sprintf("servers[%d]", i), "%v (or embedded)", err)
		}
	}
	if _, _, err := net.SplitHostPort(n.Listen); err != nil {
		return bad("listen", "want host:port, got %q", n.Listen)
	}
	if n.ClusterListen != "" {
		if _, _, err := net.SplitHostPort(n.ClusterListen); err != nil {
			return bad("cluster_listen", "want host:port, got %q", n.ClusterListen)
		}
	}
	for i, r := range n.Cluster {
		if err := bus.ValidRoute(r); err != nil {
			return bad(fmt.Sprintf("cluster[%d]", i), "want nats://host:port, got %q", r)
		}
	}
	if (len(n.Cluster) > 0 || n.ClusterListen != "") && !n.embedded() {
		key := "cluster"
		if len(n.Cluster) == 0 {
			key = "cluster_listen"
		}
		return bad(key, "routes join embedded servers: needs nats.servers: [embedded]")
	}
	if !isToken(n.ClusterName) {
		return bad("cluster_name", "want a name of letters, digits, '-' and '_', got %q", n.ClusterName)
	}
	if err := bus.ValidPrefix(n.Prefix); err != nil {
		return bad("prefix", "%v", err)
	}
	if n.NodeID != "" {
		if err := bus.ValidNode(n.NodeID); err != nil {
			return bad("node_id", "%v", err)
		}
	}
	if n.AuthTimeout < 0 {
		return bad("auth_timeout", "must be positive, got %v", n.AuthTimeout)
	}
	for i, h := range n.AuthHeaders {
		if !isToken(h) {
			return bad(fmt.Sprintf("auth_headers[%d]", i), "want a header field name, got %q", h)
		}
	}
	if n.Queue < 0 {
		return bad("queue", "must not be negative, got %d", n.Queue)
	}
	return nil
}

// validateFleetRoute checks what a route asks of the bus.
func (c *Config) validateFleetRoute(key string, r Route) error {
	bad := func(k, format string, a ...any) error {
		return &ConfigError{Key: key + "." + k, Reason: fmt.Sprintf(format, a...)}
	}
	if r.Behaviour == Bridge && !c.NATS.Enabled() {
		return bad("behaviour", "bridge needs nats.servers (NATS servers to join, or embedded)")
	}
	if r.Auth && !c.NATS.Enabled() {
		return bad("auth", "authorisation asks a service on NATS: needs nats.servers (NATS servers to join, or embedded)")
	}
	if r.Subject != "" {
		if r.Behaviour != Bridge {
			return bad("subject", "only a bridge route has a subject")
		}
		if err := bus.ValidRouteSubject(r.Subject); err != nil {
			return bad("subject", "%v", err)
		}
	} else if r.Behaviour == Bridge {
		if _, err := bus.RouteSubject(r.Path); err != nil {
			return bad("subject", "%v", err)
		}
	}
	return nil
}
