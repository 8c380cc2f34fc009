package gateway

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/upgate/upgate/loop"
)

// Behaviour names what a route does with its connections.
type Behaviour string

// Built-in behaviours.
const (
	// Echo sends every message back to its sender.
	Echo Behaviour = "echo"
	// PubSub fans messages out to the subscribers of a topic. The topic is
	// the path segment that matches "{topic}" in the route's path, or the
	// "topic" query parameter.
	PubSub Behaviour = "pubsub"
	// Custom hands connections to the route's Handler (Route.Handler, or
	// the default given by WithHandler).
	Custom Behaviour = "custom"
	// Bridge publishes every message of a client to the NATS bus, on
	// <prefix>.in.<subject> (Route.Subject), for backends to consume; they
	// answer through the connection's and the topics' subjects (see
	// Config.NATS). On a "/{topic}" route the connection also subscribes to
	// its topic, when one is given. Needs Config.NATS.
	Bridge Behaviour = "bridge"
	// Stream speaks only the protocols Route.Protocols names, registered
	// with WithProtocol: no WebSocket.
	Stream Behaviour = "stream"
)

// Route maps a path to a behaviour and its own rules.
type Route struct {
	// Path is matched exactly ("/echo"), or, when it ends in "/{topic}",
	// as a prefix whose next segment names the topic ("/ws/{topic}"); the
	// prefix alone ("/ws") matches too, the topic then coming from the
	// "topic" query parameter. An exact path wins over a pattern. The paths
	// /healthz and /readyz are the gateway's own.
	Path      string    `yaml:"path"`
	Behaviour Behaviour `yaml:"behaviour"`
	// Origins lists the Origin values allowed to open a WebSocket. Empty
	// allows any origin, including none; "*" allows any origin too. A
	// request whose Origin is not listed is answered 403 (cross-site
	// WebSocket hijacking, RFC 6455 §10.2). Origins compare without regard
	// to case and to a trailing "/". A request without Origin does not come
	// from a browser and is allowed.
	Origins []string `yaml:"origins"`
	// Subprotocols lists the subprotocols the route speaks, in no particular
	// order: the client's first one that is listed is chosen. When
	// RequireSubprotocol is set, a handshake that offers none of them is
	// answered 400. At most 1024 (maxSubprotocols).
	Subprotocols       []string `yaml:"subprotocols"`
	RequireSubprotocol bool     `yaml:"require_subprotocol"`
	// MaxMessage is the route's message size limit in bytes; zero takes
	// Limits.MaxMessage.
	MaxMessage int64 `yaml:"max_message"`
	// PlainHTTP answers a request without a WebSocket upgrade with 200 and
	// a short description, ignoring an upgrade to another protocol (such
	// as h2c; RFC 9110 §7.8); otherwise such a request gets 426 Upgrade
	// Required.
	PlainHTTP bool `yaml:"plain_http"`
	// Publish lets clients of a pubsub route publish to their topic: each
	// message they send reaches every subscriber of the topic, themselves
	// included. Otherwise their messages are refused (close 1008).
	Publish bool `yaml:"publish"`
	// Auth makes a WebSocket handshake on the route wait for the answer of
	// an authorisation service on the bus (<prefix>.auth, see Config.NATS)
	// before the 101: a refusal answers 403 (or 401), no answer within
	// NATS.AuthTimeout 401, no service 503. The answer may name the
	// connection's user and topics it joins. Needs Config.NATS.
	Auth bool `yaml:"auth"`
	// Subject is the subject token(s) of a bridge route's messages,
	// <prefix>.in.<subject>; empty derives it from the path: "/chat" is
	// "chat", "/api/chat/{topic}" is "api.chat".
	Subject string `yaml:"subject"`
	// Handler receives the connections of a Custom route; nil takes the
	// Handler given by WithHandler. New fails for a Custom route with
	// neither, and Validate for a Handler on a route of another behaviour.
	// It is Go code, not configuration: no file key sets it.
	Handler Handler `yaml:"-" json:"-"`
	// NoDeflate turns permessage-deflate (RFC 7692) off on the route: an
	// offer of it is declined, Sec-WebSocket-Extensions is not read (a
	// malformed one is answered 400 only where deflate is on), and every
	// message goes out uncompressed.
	// Otherwise the route accepts the first acceptable offer (see
	// Config.Deflate).
	NoDeflate bool `yaml:"no_deflate"`
	// DeflateLevel and DeflateThreshold are the route's compression level
	// and threshold; zero takes Config.Deflate's. Neither goes with
	// NoDeflate.
	DeflateLevel     int `yaml:"deflate_level"`
	DeflateThreshold int `yaml:"deflate_threshold"`
	// Protocols names the protocols the route accepts besides its
	// behaviour's own, registered with WithProtocol, in the gateway's
	// order of preference; the behaviour's own protocol ("websocket")
	// comes after them unless listed. A request switches to the protocol
	// of its Upgrade list the client prefers among them (RFC 9110 §7.8);
	// one that asks for none gets 426 naming them all, or, with
	// PlainHTTP, the plain answer.
	Protocols []string `yaml:"protocols"`
	// Upstream is the HOST:PORT a tcp or websockify route connects each
	// tunnel to, dialled before the 101 (502 when refused, 504 beyond
	// ConnectTimeout). Only for those routes.
	Upstream string `yaml:"upstream"`
	// ConnectTimeout bounds the upstream connect; zero takes
	// DefaultConnectTimeout (5 s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxTunnels bounds the route's tunnels at once (503 beyond); zero
	// leaves only Limits.MaxConnections, which every tunnel counts in.
	MaxTunnels int `yaml:"max_tunnels"`
}

// Deflate sets how the routes that keep permessage-deflate (RFC 7692) on
// compress what they send. A handshake that offers the extension is
// answered "permessage-deflate; server_no_context_takeover;
// client_no_context_takeover": every message is compressed and inflated on
// its own, from an empty window, so that no connection keeps a compressor
// or an inflater and an idle connection costs what it costs without the
// extension. Messages from clients are inflated whatever their size, up to
// the route's message size limit once inflated.
type Deflate struct {
	// Level is the compression level, 1 (fastest) to 9 (smallest); zero
	// means DefaultDeflateLevel.
	Level int `yaml:"level"`
	// Threshold is the smallest payload, in bytes, that is sent
	// compressed; smaller messages go out as they are. Zero means
	// DefaultDeflateThreshold.
	Threshold int `yaml:"threshold"`
}

// Limits bound what clients may take. Each rejection is counted in metrics.
type Limits struct {
	// MaxConnections caps open WebSocket connections; a handshake beyond it
	// is answered 503 with Retry-After. Plain HTTP requests (health checks)
	// are still answered. Zero means DefaultMaxConnections.
	MaxConnections int `yaml:"max_connections"`
	// ConnectRate is the sustained number of new connections accepted per
	// second, ConnectBurst the bucket size (token bucket). Over it a
	// handshake is answered 429 with Retry-After. Zero rate disables the
	// limit; zero burst means the rate rounded up (Normalize fills it in).
	ConnectRate  float64 `yaml:"connect_rate"`
	ConnectBurst int     `yaml:"connect_burst"`
	// MaxMessage is the largest message accepted (close 1009 beyond).
	MaxMessage int64 `yaml:"max_message"`
	// MaxOutbound bounds the bytes queued to one connection; a slow
	// consumer beyond it is closed with 1008.
	MaxOutbound int `yaml:"max_outbound"`
	// MaxLoopBacklog bounds the bytes of published frames queued to one
	// event loop and not yet written; a publish that would go beyond it is
	// refused (ErrLoopBehind, 503 from the admin API, close 1013 for a
	// publishing client). Zero means DefaultMaxLoopBacklog.
	MaxLoopBacklog int `yaml:"max_loop_backlog"`
	// MaxHeadBytes and MaxHeaderFields bound the request head (431/414).
	MaxHeadBytes    int `yaml:"max_head_bytes"`
	MaxHeaderFields int `yaml:"max_header_fields"`
	// FDReserve is how many file descriptors below the process's limit
	// (RLIMIT_NOFILE) the public listener keeps free; connections beyond
	// what the rest allows are answered 503 with Retry-After and closed at
	// once, so that running out of descriptors never stops the listener.
	// Zero means 1/32 of the limit, at least 64 and at most 4096; negative
	// turns the guard off (see loop.Options.FDReserve).
	FDReserve int `yaml:"fd_reserve"`
	// ConnPool is how many ended connections' state (about 230 bytes each)
	// every event loop keeps to reuse for the next ones, so that a
	// handshake allocates nothing in the gateway; memory the loop keeps
	// after a wave of disconnects. Zero means loop.DefaultConnPool (4096);
	// negative keeps none (see loop.Options.ConnPool).
	ConnPool int `yaml:"conn_pool"`
}

// Timeouts bound how long connections may take. Zero means the default;
// a negative Idle or Ping disables that timer.
type Timeouts struct {
	Handshake time.Duration `yaml:"handshake"` // accept to complete request head (408)
	Idle      time.Duration `yaml:"idle"`      // no inbound traffic (close 1001)
	Ping      time.Duration `yaml:"ping"`      // silence before a server ping
	Pong      time.Duration `yaml:"pong"`      // time to answer a ping
	Close     time.Duration `yaml:"close"`     // each step of a close handshake
	Drain     time.Duration `yaml:"drain"`     // graceful shutdown budget
	// DrainDelay is how long Shutdown keeps serving, /readyz answering 503,
	// before it stops accepting and closes connections: time for load
	// balancers to take the instance out of rotation. Default 0.
	DrainDelay time.Duration `yaml:"drain_delay"`
}

// Config is the whole configuration of a gateway. The zero value, after
// Normalize, is the default gateway: public listener on :8080, admin on
// 127.0.0.1:9090, routes /echo and /ws/{topic}.
type Config struct {
	// Listen is the public address, "host:port", or "off" (ListenOff)
	// when only the TLS listener serves.
	Listen string `yaml:"listen"`
	// Admin is the admin listener (metrics, publish/send/disconnect API).
	// Keep it on loopback or a private network. "off" disables it.
	Admin string `yaml:"admin"`
	// Loops is the number of event loops; zero means one per CPU.
	Loops int `yaml:"loops"`
	// ReusePort gives each loop its own listening socket (SO_REUSEPORT).
	ReusePort bool `yaml:"reuse_port"`
	// ProxyProtocol expects a PROXY protocol header (v1 or v2) at the start
	// of every connection on the public listener and the TLS listener
	// (there before the TLS ClientHello), as an L4 load balancer sends it. The header's source address is then the client's (before
	// TrustedProxies and X-Forwarded-For apply); a connection without a
	// valid header is closed without a response. Only for a listener that
	// nothing but the balancer can reach.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// TrustedProxies lists the addresses or CIDR prefixes whose
	// X-Forwarded-For header is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`

	Routes   []Route  `yaml:"routes"`
	Limits   Limits   `yaml:"limits"`
	Timeouts Timeouts `yaml:"timeouts"`
	// NATS joins the gateway to a fleet over NATS; off by default.
	NATS NATS `yaml:"nats"`
	// TLS is the TLS listener (wss://); off by default.
	TLS TLS `yaml:"tls"`
	// Deflate is the compression of the routes that negotiate
	// permessage-deflate (all but those with Route.NoDeflate).
	Deflate Deflate `yaml:"deflate"`
	// Tunnels sets the reactor of the tcp and websockify routes.
	Tunnels Tunnels `yaml:"tunnels"`
}

// maxSubprotocols bounds Route.Subprotocols: a connection keeps its
// subprotocol as a 16-bit index into the list, and the list is scanned at
// every handshake that offers one.
const maxSubprotocols = 1024

// Defaults of Config.
const (
	DefaultListen         = ":8080"
	DefaultAdmin          = "127.0.0.1:9090"
	DefaultMaxConnections = 100_000
	DefaultMaxMessage     = loop.DefaultMaxMessage
	DefaultMaxOutbound    = loop.DefaultMaxOutbound
	DefaultMaxLoopBacklog = 1 << 20

	// DefaultDeflateLevel is level 1, the fastest that still finds
	// repeated strings: a message costs the least CPU there, and the
	// default level 5 saves a few per cent more bytes on typical JSON for
	// about a third more time per message (loop/deflate's measurements).
	// Memory does not depend on it: compressors belong to the event loops,
	// not to connections.
	DefaultDeflateLevel = 1
	// DefaultDeflateThreshold leaves messages under 128 bytes
	// uncompressed. Short messages give DEFLATE little to match: the
	// block's own overhead can eat the saving or make the payload larger,
	// while every message pays the same fixed cost to compress and, at the
	// client, to inflate.
	DefaultDeflateThreshold = 128
	// MaxDeflateLevel is the highest compression level.
	MaxDeflateLevel = 9
)

// DefaultRoutes are the routes of a gateway configured with none.
func DefaultRoutes() []Route {
	return []Route{
		{Path: "/echo", Behaviour: Echo, PlainHTTP: true},
		{Path: "/ws/{topic}", Behaviour: PubSub, Publish: true},
	}
}

// Default timeouts: the loop's, so that both layers agree.
const (
	DefaultHandshakeTimeout = loop.DefaultHandshakeTimeout
	DefaultIdleTimeout      = loop.DefaultIdleTimeout
	DefaultPingInterval     = loop.DefaultPingInterval
	DefaultPongTimeout      = loop.DefaultPongTimeout
	DefaultCloseTimeout     = loop.DefaultCloseTimeout
	DefaultDrainTimeout     = loop.DefaultDrainTimeout
)

// Normalize fills in defaults.
func (c *Config) Normalize() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Admin == "" {
		c.Admin = DefaultAdmin
	}
	if len(c.Routes) == 0 {
		c.Routes = DefaultRoutes()
	}
	l := &c.Limits
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxMessage == 0 {
		l.MaxMessage = DefaultMaxMessage
	}
	if l.MaxOutbound == 0 {
		l.MaxOutbound = DefaultMaxOutbound
	}
	if l.MaxLoopBacklog == 0 {
		l.MaxLoopBacklog = DefaultMaxLoopBacklog
	}
	if l.ConnectBurst == 0 && l.ConnectRate > 0 {
		l.ConnectBurst = int(math.Ceil(l.ConnectRate))
	}
	t := &c.Timeouts
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&t.Handshake, DefaultHandshakeTimeout},
		{&t.Idle, DefaultIdleTimeout},
		{&t.Ping, DefaultPingInterval},
		{&t.Pong, DefaultPongTimeout},
		{&t.Close, DefaultCloseTimeout},
		{&t.Drain, DefaultDrainTimeout},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	for i := range c.Routes {
		if c.Routes[i].Behaviour == "" {
			c.Routes[i].Behaviour = Echo
		}
	}
	if c.Deflate.Level == 0 {
		c.Deflate.Level = DefaultDeflateLevel
	}
	if c.Deflate.Threshold == 0 {
		c.Deflate.Threshold = DefaultDeflateThreshold
	}
	c.NATS.normalize()
	c.TLS.normalize()
}

// ConfigError names the configuration key that is wrong and why.
type ConfigError struct {
	Key    string // YAML path, e.g. "routes[1].path"
	Reason string
}

func (e *ConfigError) Error() string { return "gateway: config: " + e.Key + ": " + e.Reason }

// Validate checks a normalized Config and returns a *ConfigError naming the
// first bad key.
func (c *Config) Validate() error {
	if c.Listen != ListenOff {
		_, port, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return bad("listen", "want host:port or off, got %q", c.Listen)
		}
		if c.ReusePort && (port == "0" || port == "") {
			return bad("reuse_port", "needs an explicit port in listen, got %q", c.Listen)
		}
	}
	if c.Admin != "off" {
		_, aport, err := net.SplitHostPort(c.Admin)
		if err != nil {
			return bad("admin", "want host:port or off, got %q", c.Admin)
		}
		if c.Admin == c.Listen && aport != "0" {
			return bad("admin", "must differ from listen (%q)", c.Listen)
		}
	}
	if c.Loops < 0 || c.Loops > 1024 {
		return bad("loops", "want 0 (one per CPU) to 1024, got %d", c.Loops)
	}
	for i, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return bad(fmt.Sprintf("trusted_proxies[%d]", i), "want an IP address or CIDR prefix, got %q", p)
			}
		}
	}
	seen := make(map[string]int)
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if !strings.HasPrefix(r.Path, "/") {
			return bad(key+".path", "must start with /, got %q", r.Path)
		}
		if strings.ContainsAny(r.Path, "?# \t") {
			return bad(key+".path", "must not hold '?', '#' or blanks, got %q", r.Path)
		}
		if r.Path == "/healthz" || r.Path == "/readyz" {
			return bad(key+".path", "%q is reserved for health checks", r.Path)
		}
		if j, ok := seen[r.Path]; ok {
			return bad(key+".path", "%q is also routes[%d].path", r.Path, j)
		}
		seen[r.Path] = i
		if strings.Contains(strings.TrimSuffix(r.Path, "/{topic}"), "{") {
			return bad(key+".path", "only a final /{topic} segment may be a pattern, got %q", r.Path)
		}
		switch r.Behaviour {
		case Echo, PubSub, Custom, Bridge, Stream, TCP, Websockify:
		default:
			return bad(key+".behaviour", "want echo, pubsub, bridge, custom, stream, tcp or websockify, got %q", r.Behaviour)
		}
		for j, p := range r.Protocols {
			if !isToken(p) {
				return bad(fmt.Sprintf("%s.protocols[%d]", key, j), "want a protocol name (an HTTP token), got %q", p)
			}
		}
		if r.Behaviour == Stream && len(r.Protocols) == 0 {
			return bad(key+".protocols", "a stream route needs at least one protocol")
		}
		if err := c.validateFleetRoute(key, r); err != nil {
			return err
		}
		if r.MaxMessage < 0 || r.MaxMessage > 1<<31 {
			return bad(key+".max_message", "want 0 (limits.max_message) to 2 GiB, got %d", r.MaxMessage)
		}
		if len(r.Subprotocols) > maxSubprotocols {
			return bad(key+".subprotocols", "want at most %d, got %d", maxSubprotocols, len(r.Subprotocols))
		}
		for j, p := range r.Subprotocols {
			if !isToken(p) {
				return bad(fmt.Sprintf("%s.subprotocols[%d]", key, j), "want an HTTP token, got %q", p)
			}
		}
		for j, o := range r.Origins {
			if o != "*" && !strings.Contains(o, "://") {
				return bad(fmt.Sprintf("%s.origins[%d]", key, j), "want * or scheme://host[:port], got %q", o)
			}
		}
		if r.RequireSubprotocol && len(r.Subprotocols) == 0 {
			return bad(key+".require_subprotocol", "needs subprotocols")
		}
		if r.Handler != nil && r.Behaviour != Custom {
			return bad(key+".behaviour", "only a custom route takes a Route.Handler, this one is %s", r.Behaviour)
		}
		if r.Publish && r.Behaviour != PubSub {
			return bad(key+".publish", "only a pubsub route publishes its clients' messages, this one is %s", r.Behaviour)
		}
		if r.DeflateLevel < 0 || r.DeflateLevel > MaxDeflateLevel {
			return bad(key+".deflate_level", "want 0 (deflate.level) or 1 (fastest) to 9 (smallest), got %d", r.DeflateLevel)
		}
		if r.DeflateThreshold < 0 || int64(r.DeflateThreshold) > 1<<31 {
			return bad(key+".deflate_threshold", "want 0 (deflate.threshold) to 2 GiB, got %d", r.DeflateThreshold)
		}
		if r.NoDeflate && r.DeflateLevel != 0 {
			return bad(key+".deflate_level", "means nothing with no_deflate, which turns compression off on the route")
		}
		if r.NoDeflate && r.DeflateThreshold != 0 {
			return bad(key+".deflate_threshold", "means nothing with no_deflate, which turns compression off on the route")
		}
	}
	if err := c.validateTunnels(); err != nil {
		return err
	}
	if c.Deflate.Level < 0 || c.Deflate.Level > MaxDeflateLevel {
		return bad("deflate.level", "want 0 (default %d) or 1 (fastest) to 9 (smallest), got %d", DefaultDeflateLevel, c.Deflate.Level)
	}
	if c.Deflate.Threshold < 0 || int64(c.Deflate.Threshold) > 1<<31 {
		return bad("deflate.threshold", "want 0 (default %d) to 2 GiB, got %d", DefaultDeflateThreshold, c.Deflate.Threshold)
	}
	l := c.Limits
	switch {
	case l.MaxConnections < 0:
		return bad("limits.max_connections", "must not be negative, got %d", l.MaxConnections)
	case l.ConnectRate < 0:
		return bad("limits.connect_rate", "must not be negative, got %v", l.ConnectRate)
	case l.ConnectBurst < 0:
		return bad("limits.connect_burst", "must not be negative, got %d", l.ConnectBurst)
	case l.MaxMessage < 0 || l.MaxMessage > 1<<31:
		return bad("limits.max_message", "want 0 to 2 GiB, got %d", l.MaxMessage)
	case l.MaxOutbound < 0:
		return bad("limits.max_outbound", "must not be negative, got %d", l.MaxOutbound)
	case l.MaxLoopBacklog < 0:
		return bad("limits.max_loop_backlog", "must not be negative, got %d", l.MaxLoopBacklog)
	case l.MaxHeadBytes < 0 || l.MaxHeadBytes > 1<<20:
		return bad("limits.max_head_bytes", "want 0 (default 8 KiB) to 1 MiB, got %d", l.MaxHeadBytes)
	case l.MaxHeaderFields < 0 || l.MaxHeaderFields > 10000:
		return bad("limits.max_header_fields", "want 0 (default 100) to 10000, got %d", l.MaxHeaderFields)
	}
	t := c.Timeouts
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"timeouts.handshake", t.Handshake}, {"timeouts.pong", t.Pong},
		{"timeouts.close", t.Close}, {"timeouts.drain", t.Drain},
		{"timeouts.drain_delay", t.DrainDelay},
	} {
		if d.v < 0 {
			return bad(d.key, "must be positive, got %v", d.v)
		}
	}
	if err := c.NATS.validate(); err != nil {
		return err
	}
	return c.validateTLS()
}

// isToken reports whether s is a non-empty HTTP token (RFC 9110 §5.6.2), the
// form a subprotocol name takes (RFC 6455 §4.1).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
