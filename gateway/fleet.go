package gateway

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/parser"
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

// routeSubject returns the bridge subject of a route, or "".
func (g *Gateway) routeSubject(r *Route) string {
	if r.Behaviour != Bridge || g.bus == nil {
		return ""
	}
	s := r.Subject
	if s == "" {
		s, _ = bus.RouteSubject(r.Path)
	}
	return g.bus.Subjects().In(s)
}

// newBus prepares the gateway's bus from the configuration.
func (g *Gateway) newBus() error {
	n := g.cfg.NATS
	o := bus.Options{
		Prefix:      n.Prefix,
		Node:        n.NodeID,
		AuthTimeout: n.AuthTimeout,
		QueueLen:    n.Queue,
		Logger:      g.log,
	}
	if n.embedded() {
		o.Embedded = &bus.ServerOptions{
			Listen:        n.Listen,
			ClusterListen: n.ClusterListen,
			ClusterName:   n.ClusterName,
			Routes:        n.Cluster,
			// Room for a largest message and its headers, clamped in
			// int64: max_message allows 2 GiB, past a 32-bit int.
			MaxPayload: int(min(max(g.cfg.Limits.MaxMessage+64<<10, 1<<20), math.MaxInt32)),
		}
	} else {
		o.URLs = n.Servers
	}
	b, err := bus.New(o, (*busLocal)(g))
	if err != nil {
		return err
	}
	g.bus = b
	g.topics.watch = func(topic string, on bool) {
		if on {
			b.Watch(topic)
		} else {
			b.Unwatch(topic)
		}
	}
	for _, h := range n.AuthHeaders {
		g.authHeaders = append(g.authHeaders, strings.ToLower(h))
	}
	return nil
}

// Bus returns the gateway's connection to NATS, nil without Config.NATS.
// Any goroutine.
func (g *Gateway) Bus() *bus.Bus { return g.bus }

// NodeID returns the node's id in the fleet, "" without Config.NATS. Any
// goroutine.
func (g *Gateway) NodeID() string {
	if g.bus == nil {
		return ""
	}
	return g.bus.Node()
}

// busLocal is the Gateway seen by its bus: deliveries to this node's
// connections and topics.
type busLocal Gateway

var _ bus.Local = (*busLocal)(nil)

func (l *busLocal) Deliver(n uint64, op bus.OpCode, payload []byte) error {
	return busError((*Gateway)(l).Send(n, op, payload))
}

func (l *busLocal) Disconnect(n uint64, code uint16, reason string) error {
	return busError((*Gateway)(l).Disconnect(n, StatusCode(code), reason))
}

func (l *busLocal) Fanout(topic string, op bus.OpCode, payload []byte) (int, error) {
	g := (*Gateway)(l)
	t := g.topics.lookup(topic)
	if t == nil {
		return 0, nil
	}
	if g.behind(t, -1, len(payload)) {
		g.stats.refused[srcBus].Add(1)
		return 0, bus.ErrLoopBehind
	}
	n := g.fanout(t, op, payload, -1)
	g.stats.busDelivered.Add(uint64(n))
	return n, nil
}

// busError maps the gateway's errors onto the bus's.
func busError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownConn):
		return bus.ErrUnknownConn
	case errors.Is(err, ErrSlowConsumer):
		return bus.ErrSlowConsumer
	case errors.Is(err, ErrClosed), errors.Is(err, loop.ErrNotOpen):
		return bus.ErrConnClosed
	}
	return err
}

// remoteString is the client's address as the bus shows it: host:port, or
// the address alone when X-Forwarded-For named it (no port known).
func remoteString(lc *loop.Conn, client netip.Addr) string {
	ap := lc.ClientAddr()
	if ap.Addr() == client && ap.Port() != 0 {
		return ap.String()
	}
	if !client.IsValid() {
		return ""
	}
	return client.String()
}

// authRequest copies what the authorisation service is told of a
// handshake: it runs in OnRequest, while the head's views are valid.
func (g *Gateway) authRequest(lc *loop.Conn, h *parser.Request, c *Conn) *bus.AuthRequest {
	req := &bus.AuthRequest{
		Conn:        g.bus.Subjects().FleetID(lc.ID()),
		Node:        g.bus.Node(),
		Route:       c.rt.Path,
		Path:        string(h.Path()),
		Query:       string(h.Query()),
		Topic:       c.topicName,
		Remote:      remoteString(lc, c.client),
		Subprotocol: c.sub,
	}
	for i := 0; i < h.NumFields(); i++ {
		name, value := h.Field(i)
		for _, want := range g.authHeaders {
			if len(name) == len(want) && strings.EqualFold(string(name), want) {
				if req.Headers == nil {
					req.Headers = map[string][]string{}
				}
				key := http.CanonicalHeaderKey(string(name))
				req.Headers[key] = append(req.Headers[key], string(value))
				break
			}
		}
	}
	return req
}

// deferAuth puts the handshake of c off until the authorisation service on
// the bus answers (or the wait ends): the event loop goes on meanwhile. The
// connection slot c holds is released when the answer refuses it or the
// connection went away.
func (g *Gateway) deferAuth(r *loop.Request, d *loop.Decision, c *Conn) {
	lc := r.Conn
	req := g.authRequest(lc, r.Head, c)
	d.Defer()
	g.bus.Authorize(req, func(res bus.AuthResult) {
		lc.Resolve(func(d *loop.Decision, ok bool) {
			if !ok {
				g.releaseSlot()
				return
			}
			g.authorized(lc, d, c, res)
		})
	})
}

// authorized completes a deferred handshake with the service's answer, on
// the connection's loop.
func (g *Gateway) authorized(lc *loop.Conn, d *loop.Decision, c *Conn, res bus.AuthResult) {
	rt := c.rt
	if !res.Allowed() {
		g.releaseSlot()
		header := ""
		if res.Status == 503 {
			header = retryAfterHeaders[retryAfterFull]
		}
		g.refuse(rt, d, rejAuthorize, res.Status, res.Reason, header)
		return
	}
	for _, t := range res.Topics {
		if !validTopic([]byte(t)) {
			g.releaseSlot()
			g.refuse(rt, d, rejAuthorize, 502, reasonBadTopics, "")
			return
		}
	}
	c.user, c.joins = res.User, res.Topics
	lc.SetContext(c)
	var sub []byte
	if c.sub != "" {
		sub = []byte(c.sub)
	}
	d.Upgrade(sub, nil, rt.maxMessage)
}

// joinTopics subscribes c to the topics its authorisation named, besides
// its route's: each membership is a Conn of its own in the topic's
// subscriber list, sharing c's connection.
func (g *Gateway) joinTopics(c *Conn) {
	for _, name := range c.joins {
		if name == c.topicName {
			continue
		}
		dup := false
		for _, m := range c.members {
			if m.topicName == name {
				dup = true
			}
		}
		if dup {
			continue
		}
		m := &Conn{lc: c.lc, g: g, rt: c.rt, kind: c.kind, group: c.group, member: true,
			topicName: g.topics.intern([]byte(name)), sub: c.sub, client: c.client, user: c.user}
		m.topic = g.topics.subscribe(m.topicName, m)
		c.members = append(c.members, m)
	}
}

// busOpened tells the bus about a connection that opened: its description
// for bridged messages, and the open event.
func (g *Gateway) busOpened(c *Conn) {
	path := c.rt.Path
	if c.req != nil {
		path = c.req.Path
	}
	c.bc = g.bus.NewConn(c.lc.ID(), c.rt.Path, g.routeSubject(&c.rt.Route), remoteString(c.lc, c.client), c.sub, c.topicName, c.user, path)
	g.bus.Event(bus.EventOpen, c.bc, 0)
}

// FleetID returns the connection's id in the fleet, "<node>.<id>", as
// backends address it on the bus; without Config.NATS, the decimal ID. Any
// goroutine.
func (c *Conn) FleetID() string {
	if c.g.bus == nil {
		return strconv.FormatUint(c.ID(), 10)
	}
	return c.g.bus.Subjects().FleetID(c.ID())
}

// User returns the user id the authorisation service gave the connection,
// or "". Any goroutine once the connection is open.
func (c *Conn) User() string { return c.user }

// busReady reports whether the bus, if any, is connected, and its state.
func (g *Gateway) busReady() (bool, string) {
	if g.bus == nil {
		return true, ""
	}
	s := g.bus.State()
	return s == bus.StateConnected, s.String()
}
