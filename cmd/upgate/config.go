package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/upgate/upgate/gateway"
)

// fileConfig is everything the binary can be told: the gateway's Config and
// the binary's own logging settings. Its YAML shape is the configuration
// file's: gateway keys at the top level, logging under "log".
type fileConfig struct {
	gateway.Config `yaml:",inline"`
	Log            logConfig `yaml:"log"`
}

type logConfig struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn or error
}

// Defaults of the binary's own settings.
const (
	defaultLogFormat = "text"
	defaultLogLevel  = "info"
	envPrefix        = "UPGATE_"
	envConfig        = "UPGATE_CONFIG"
	// envTestPrefix is reserved for the variables of the project's own test
	// and benchmark scripts: upgate neither reads nor warns about them.
	envTestPrefix = "UPGATE_TEST_"
)

// option is one setting reachable from a flag, an environment variable and
// a key of the configuration file. Its value type is the type of the field
// it points to.
type option struct {
	flag  string                // flag name without dashes; the env var is derived from it
	key   string                // YAML path, as gateway.ConfigError names it
	group string                // heading in --help
	meta  string                // value placeholder in --help
	usage string                // one sentence or two for --help
	zero  string                // what the zero value means, when it means something else
	field func(*fileConfig) any // pointer to the field
	// repeat makes a list flag repeatable: each occurrence adds to the
	// list instead of replacing it.
	repeat bool
}

// env is the option's environment variable: UPGATE_ and the flag name in
// upper snake case.
func (o *option) env() string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(o.flag, "-", "_"))
}

// Help groups, in the order --help prints them.
const (
	groupListen   = "Listeners"
	groupLimits   = "Limits (each rejection is counted in /metrics)"
	groupTimeouts = "Timeouts"
	groupFleet    = "Fleet over NATS (subjects and headers: README, Running a fleet)"
	groupTLS      = "TLS (wss://; SIGHUP reloads the certificates)"
	groupDeflate  = "Compression (permessage-deflate, on every route without no_deflate)"
	groupTunnels  = "Tunnels (tcp and websockify routes)"
	groupLog      = "Logging"
)

// options lists every setting but the configuration file itself and the
// routes. A test checks that each leaf of gateway.Config is here.
var options = []option{
	{flag: "listen", key: "listen", group: groupListen, meta: "HOST:PORT|off",
		usage: "Public listener for WebSocket and plain HTTP (/healthz, /readyz). An empty host listens on every interface; off serves TLS only (needs tls-listen).",
		field: func(c *fileConfig) any { return &c.Listen }},
	{flag: "admin", key: "admin", group: groupListen, meta: "HOST:PORT|off",
		usage: "Admin listener: /metrics, POST /publish/{topic}, POST /connections/{id}/send, DELETE /connections/{id}. Keep it on loopback or a private network; off disables it.",
		field: func(c *fileConfig) any { return &c.Admin }},
	{flag: "loops", key: "loops", group: groupListen, meta: "N",
		usage: "Number of event loops.", zero: "one per CPU",
		field: func(c *fileConfig) any { return &c.Loops }},
	{flag: "reuse-port", key: "reuse_port", group: groupListen,
		usage: "Give each event loop its own listening socket (SO_REUSEPORT).",
		field: func(c *fileConfig) any { return &c.ReusePort }},
	{flag: "proxy-protocol", key: "proxy_protocol", group: groupListen,
		usage: "Expect a PROXY protocol header (v1 or v2) at the start of each connection on the public listener, and on the TLS listener before the TLS handshake.",
		field: func(c *fileConfig) any { return &c.ProxyProtocol }},
	{flag: "trusted-proxies", key: "trusted_proxies", group: groupListen, meta: "LIST",
		usage: "Comma-separated addresses or CIDR prefixes whose X-Forwarded-For header is believed.", zero: "none",
		field: func(c *fileConfig) any { return &c.TrustedProxies }},

	{flag: "max-connections", key: "limits.max_connections", group: groupLimits, meta: "N",
		usage: "Open connections at most; a handshake beyond is answered 503 with Retry-After.",
		field: func(c *fileConfig) any { return &c.Limits.MaxConnections }},
	{flag: "connect-rate", key: "limits.connect_rate", group: groupLimits, meta: "PER_SECOND",
		usage: "New connections accepted per second, sustained; beyond, a handshake is answered 429 with Retry-After.", zero: "unlimited",
		field: func(c *fileConfig) any { return &c.Limits.ConnectRate }},
	{flag: "connect-burst", key: "limits.connect_burst", group: groupLimits, meta: "N",
		usage: "Connections accepted at once above the connect rate (token bucket size).", zero: "the rate, rounded up",
		field: func(c *fileConfig) any { return &c.Limits.ConnectBurst }},
	{flag: "max-message", key: "limits.max_message", group: groupLimits, meta: "BYTES",
		usage: "Largest message accepted, over all its fragments; a larger one closes the connection with 1009. Routes may set their own.",
		field: func(c *fileConfig) any { return &c.Limits.MaxMessage }},
	{flag: "max-outbound", key: "limits.max_outbound", group: groupLimits, meta: "BYTES",
		usage: "Bytes queued to one connection at most; a slower consumer is closed with 1008.",
		field: func(c *fileConfig) any { return &c.Limits.MaxOutbound }},
	{flag: "max-loop-backlog", key: "limits.max_loop_backlog", group: groupLimits, meta: "BYTES",
		usage: "Bytes of published messages queued to one event loop at most; a publish beyond is refused (503 from the admin API, close 1013 for a publishing client).", zero: "1048576",
		field: func(c *fileConfig) any { return &c.Limits.MaxLoopBacklog }},
	{flag: "max-head-bytes", key: "limits.max_head_bytes", group: groupLimits, meta: "BYTES",
		usage: "Largest request head; beyond it the answer is 431 (414 for a long request line).", zero: "8192",
		field: func(c *fileConfig) any { return &c.Limits.MaxHeadBytes }},
	{flag: "max-header-fields", key: "limits.max_header_fields", group: groupLimits, meta: "N",
		usage: "Header fields in a request head at most; beyond, the answer is 431.", zero: "100",
		field: func(c *fileConfig) any { return &c.Limits.MaxHeaderFields }},
	{flag: "fd-reserve", key: "limits.fd_reserve", group: groupLimits, meta: "N",
		usage: "File descriptors kept free below the process's limit (ulimit -n); connections past what the rest allows are answered 503 with Retry-After. Negative turns this off.", zero: "1/32 of the limit, 64 to 4096",
		field: func(c *fileConfig) any { return &c.Limits.FDReserve }},
	{flag: "conn-pool", key: "limits.conn_pool", group: groupLimits, meta: "N",
		usage: "Ended connections' state (about 230 bytes each) every event loop keeps to reuse, so that a handshake allocates nothing; memory kept after a wave of disconnects. Negative keeps none.", zero: "4096",
		field: func(c *fileConfig) any { return &c.Limits.ConnPool }},

	{flag: "handshake-timeout", key: "timeouts.handshake", group: groupTimeouts, meta: "DURATION",
		usage: "From accept to a complete request head; a slower client is answered 408.",
		field: func(c *fileConfig) any { return &c.Timeouts.Handshake }},
	{flag: "idle-timeout", key: "timeouts.idle", group: groupTimeouts, meta: "DURATION",
		usage: "A connection that received nothing, not even a pong, for this long is closed with 1001. Negative disables it.",
		field: func(c *fileConfig) any { return &c.Timeouts.Idle }},
	{flag: "ping-interval", key: "timeouts.ping", group: groupTimeouts, meta: "DURATION",
		usage: "Silence before the server pings a connection. Negative disables pings.",
		field: func(c *fileConfig) any { return &c.Timeouts.Ping }},
	{flag: "pong-timeout", key: "timeouts.pong", group: groupTimeouts, meta: "DURATION",
		usage: "Time a pinged connection has to answer before it is dropped.",
		field: func(c *fileConfig) any { return &c.Timeouts.Pong }},
	{flag: "close-timeout", key: "timeouts.close", group: groupTimeouts, meta: "DURATION",
		usage: "Each step of a close handshake.",
		field: func(c *fileConfig) any { return &c.Timeouts.Close }},
	{flag: "drain-timeout", key: "timeouts.drain", group: groupTimeouts, meta: "DURATION",
		usage: "Graceful shutdown budget: on SIGTERM or SIGINT every connection is closed with 1001 and the process waits this long for them.",
		field: func(c *fileConfig) any { return &c.Timeouts.Drain }},
	{flag: "drain-delay", key: "timeouts.drain_delay", group: groupTimeouts, meta: "DURATION",
		usage: "On SIGTERM or SIGINT, keep serving this long with /readyz answering 503 before draining, so that load balancers take the instance out of rotation first.",
		field: func(c *fileConfig) any { return &c.Timeouts.DrainDelay }},

	{flag: "nats", key: "nats.servers", group: groupFleet, meta: "URL[,URL...]|embedded",
		usage: "Join a fleet over NATS: the servers of an existing NATS cluster, or embedded to run a NATS server inside the process. Without it pub/sub stays inside the process.", zero: "no bus",
		field: func(c *fileConfig) any { return &c.NATS.Servers }},
	{flag: "nats-listen", key: "nats.listen", group: groupFleet, meta: "HOST:PORT",
		usage: "Client listener of the embedded NATS server, where backends connect. It has no authentication: keep it on loopback or a private network.",
		field: func(c *fileConfig) any { return &c.NATS.Listen }},
	{flag: "nats-cluster", key: "nats.cluster", group: groupFleet, meta: "URL[,URL...]",
		usage: "Route listeners (nats-cluster-listen) of the other nodes' embedded NATS servers, nats://host:port; every node may get the same list, itself included.", zero: "a single server",
		field: func(c *fileConfig) any { return &c.NATS.Cluster }},
	{flag: "nats-cluster-listen", key: "nats.cluster_listen", group: groupFleet, meta: "HOST:PORT",
		usage: "Route listener of the embedded NATS server, for the other nodes' servers.", zero: "0.0.0.0:6222 with nats-cluster, else none",
		field: func(c *fileConfig) any { return &c.NATS.ClusterListen }},
	{flag: "nats-cluster-name", key: "nats.cluster_name", group: groupFleet, meta: "NAME",
		usage: "Name of the cluster of embedded NATS servers; the same on every node.",
		field: func(c *fileConfig) any { return &c.NATS.ClusterName }},
	{flag: "nats-prefix", key: "nats.prefix", group: groupFleet, meta: "PREFIX",
		usage: "First token(s) of every subject the gateway uses: <prefix>.in.<route>, <prefix>.conn.<id>, <prefix>.topic.<name>, <prefix>.event.open|close, <prefix>.auth.",
		field: func(c *fileConfig) any { return &c.NATS.Prefix }},
	{flag: "node-id", key: "nats.node_id", group: groupFleet, meta: "ID",
		usage: "This node's id in the fleet (letters, digits, - and _), unique among the nodes; connection ids are <node>.<n>.", zero: "random at each start",
		field: func(c *fileConfig) any { return &c.NATS.NodeID }},
	{flag: "auth-timeout", key: "nats.auth_timeout", group: groupFleet, meta: "DURATION",
		usage: "How long a handshake on a route with auth waits for the authorisation service's answer before it is answered 401.",
		field: func(c *fileConfig) any { return &c.NATS.AuthTimeout }},
	{flag: "auth-headers", key: "nats.auth_headers", group: groupFleet, meta: "LIST",
		usage: "Request header fields copied into authorisation requests.",
		field: func(c *fileConfig) any { return &c.NATS.AuthHeaders }},
	{flag: "nats-queue", key: "nats.queue", group: groupFleet, meta: "N",
		usage: "Messages waiting to be published on NATS at most; beyond, they are dropped and counted (upgate_bus_undeliverable_total{reason=\"queue_full\"}).",
		field: func(c *fileConfig) any { return &c.NATS.Queue }},

	{flag: "tls-listen", key: "tls.listen", group: groupTLS, meta: "HOST:PORT",
		usage: "TLS listener for wss:// (and https:// health checks).", zero: "off",
		field: func(c *fileConfig) any { return &c.TLS.Listen }},
	{flag: "tls-cert", key: "tls.certs", group: groupTLS, meta: "FILE", repeat: true, zero: "none",
		usage: "PEM certificate chain, leaf first (repeatable, in pairs with tls-key, in the same order). The certificate is chosen by the name the client asks for (SNI), exact names before wildcards; the first is the default.",
		field: func(c *fileConfig) any { return &c.TLS.Certs }},
	{flag: "tls-key", key: "tls.keys", group: groupTLS, meta: "FILE", repeat: true, zero: "none",
		usage: "PEM private key of the tls-cert of the same rank (repeatable).",
		field: func(c *fileConfig) any { return &c.TLS.Keys }},
	{flag: "tls-client-ca", key: "tls.client_ca", group: groupTLS, meta: "FILE",
		usage: "PEM certificates of the authorities that sign client certificates: every client must then present one (mutual TLS).", zero: "none",
		field: func(c *fileConfig) any { return &c.TLS.ClientCA }},
	{flag: "tls-min-version", key: "tls.min_version", group: groupTLS, meta: "1.2|1.3",
		usage: "Oldest TLS version accepted.",
		field: func(c *fileConfig) any { return &c.TLS.MinVersion }},
	{flag: "tls-unknown-sni", key: "tls.unknown_sni", group: groupTLS, meta: "default|refuse",
		usage: "What a client asking for a name no certificate covers, or for none, gets: the default certificate, or a failed handshake.",
		field: func(c *fileConfig) any { return &c.TLS.UnknownSNI }},
	{flag: "tls-max-handshakes", key: "tls.max_handshakes", group: groupTLS, meta: "N",
		usage: "TLS handshakes in progress at most, over all event loops; a connection beyond is closed before its handshake and counted.",
		field: func(c *fileConfig) any { return &c.TLS.MaxHandshakes }},
	{flag: "tls-reload-interval", key: "tls.reload_interval", group: groupTLS, meta: "DURATION",
		usage: "How often the certificate, key and CA files are checked for changes; a change reloads them for new handshakes, a failed reload keeps the old ones. Negative turns the check off.",
		field: func(c *fileConfig) any { return &c.TLS.ReloadInterval }},

	{flag: "deflate-level", key: "deflate.level", group: groupDeflate, meta: "1-9",
		usage: "Compression level of the messages sent, 1 (fastest) to 9 (smallest). Routes may set their own (deflate_level in the file).",
		field: func(c *fileConfig) any { return &c.Deflate.Level }},
	{flag: "deflate-threshold", key: "deflate.threshold", group: groupDeflate, meta: "BYTES",
		usage: "Smallest message sent compressed; smaller ones go out as they are. Routes may set their own (deflate_threshold in the file).",
		field: func(c *fileConfig) any { return &c.Deflate.Threshold }},

	{flag: "tunnel-buffer", key: "tunnels.buffer", group: groupTunnels, meta: "BYTES",
		usage: "Bytes in flight per direction of a tcp tunnel (its pipe), 4096 to 1048576: a side whose peer reads slower is no longer read once they are held.",
		zero:  "1048576",
		field: func(c *fileConfig) any { return &c.Tunnels.Buffer }},
	{flag: "tunnel-idle-timeout", key: "tunnels.idle_timeout", group: groupTunnels, meta: "DURATION",
		usage: "A tunnel silent both ways for this long is closed.",
		zero:  "never",
		field: func(c *fileConfig) any { return &c.Tunnels.IdleTimeout }},
	{flag: "tunnel-drain-timeout", key: "tunnels.drain_timeout", group: groupTunnels, meta: "DURATION",
		usage: "How long a tunnel's other direction may go on once one side has finished sending (half-close).",
		zero:  "60s",
		field: func(c *fileConfig) any { return &c.Tunnels.DrainTimeout }},
	{flag: "tunnel-reactors", key: "tunnels.reactors", group: groupTunnels, meta: "N",
		usage: "Goroutines splicing the tunnels.",
		zero:  "one per CPU",
		field: func(c *fileConfig) any { return &c.Tunnels.Reactors }},

	{flag: "log-format", key: "log.format", group: groupLog, meta: "text|json",
		usage: "Log line format, on standard error.",
		field: func(c *fileConfig) any { return &c.Log.Format }},
	{flag: "log-level", key: "log.level", group: groupLog, meta: "debug|info|warn|error",
		usage: "Least severe level logged. Info logs the life of the process, never a line per connection or message.",
		field: func(c *fileConfig) any { return &c.Log.Level }},
}

// routesKey is the YAML key of the routes, which come from the file or from
// --route flags.
const routesKey = "routes"

// sourceKind says where a setting's value came from.
type sourceKind int

const (
	fromDefault sourceKind = iota
	fromFile
	fromEnv
	fromFlag
)

// source is where a setting's value came from, named the way the user
// wrote it.
type source struct {
	kind sourceKind
	name string // "--listen", "UPGATE_LISTEN", or the file's path
}

// settings is the loaded configuration of the binary.
type settings struct {
	cfg       fileConfig         // as given, not normalized
	file      string             // configuration file, "" for none
	lines     map[string]int     // YAML path → line in the file
	sources   map[string]source  // option key (or routesKey) → where its value came from
	logLevel  slog.Level         // parsed cfg.Log.Level
	help      bool               // --help was given: print usage, do nothing else
	version   bool               // --version was given
	flagRoute []string           // --route values, in order
	byKey     map[string]*option // options by key
}

// configError is a configuration mistake, named the way the user wrote it:
// a flag, an environment variable or a file's key with its line.
type configError struct {
	where  string // "--max-connections", "UPGATE_IDLE_TIMEOUT", "upgate.yaml:7: limits.max_message"
	reason string
}

func (e *configError) Error() string { return e.where + ": " + e.reason }

// loadSettings reads the configuration from the command-line arguments, the
// environment and the configuration file, in that order of precedence over
// the defaults. Empty environment variables count as unset. The result is
// not normalized nor validated by the gateway: gateway.New does that, and
// settings.explain names the culprit of its *gateway.ConfigError.
func loadSettings(args []string, getenv func(string) string, readFile func(string) ([]byte, error)) (*settings, error) {
	s := &settings{
		lines:   map[string]int{},
		sources: map[string]source{},
		byKey:   map[string]*option{},
	}
	for i := range options {
		s.byKey[options[i].key] = &options[i]
	}

	fs, raw := newFlagSet(s)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			s.help = true
			return s, nil
		}
		return nil, &configError{where: "command line", reason: strings.Replace(err.Error(), ": -", ": --", 1) + ` (see "upgate --help")`}
	}
	if s.help || s.version {
		return s, nil
	}
	if fs.NArg() > 0 {
		return nil, &configError{where: "command line", reason: fmt.Sprintf("unexpected argument %q (see \"upgate --help\")", fs.Arg(0))}
	}

	// The file, named by --config or UPGATE_CONFIG.
	if v, ok := raw["config"]; ok {
		s.file = v
	} else if v := getenv(envConfig); v != "" {
		s.file = v
	}
	if s.file != "" {
		data, err := readFile(s.file)
		if err != nil {
			return nil, &configError{where: s.file, reason: "cannot read the configuration file: " + unwrapPathError(err)}
		}
		if err := decodeFile(s.file, data, &s.cfg, s.lines); err != nil {
			return nil, err
		}
		for key := range s.byKey {
			if _, ok := s.lines[key]; ok {
				s.sources[key] = source{kind: fromFile, name: s.file}
			}
		}
		if _, ok := s.lines[routesKey]; ok {
			s.sources[routesKey] = source{kind: fromFile, name: s.file}
		}
	}

	// Environment variables, then flags.
	for i := range options {
		o := &options[i]
		if v := getenv(o.env()); v != "" {
			if err := parseValue(o.field(&s.cfg), v); err != nil {
				return nil, &configError{where: o.env(), reason: err.Error()}
			}
			s.sources[o.key] = source{kind: fromEnv, name: o.env()}
		}
	}
	for i := range options {
		o := &options[i]
		if v, ok := raw[o.flag]; ok {
			if err := parseValue(o.field(&s.cfg), v); err != nil {
				return nil, &configError{where: "--" + o.flag, reason: err.Error()}
			}
			s.sources[o.key] = source{kind: fromFlag, name: "--" + o.flag}
		}
	}
	if len(s.flagRoute) > 0 {
		routes := make([]gateway.Route, 0, len(s.flagRoute))
		for _, spec := range s.flagRoute {
			r, err := parseRoute(spec)
			if err != nil {
				return nil, &configError{where: fmt.Sprintf("--route %q", spec), reason: err.Error()}
			}
			routes = append(routes, r)
		}
		s.cfg.Routes = routes
		s.sources[routesKey] = source{kind: fromFlag, name: "--route"}
	}

	// The binary's own settings are checked here; the gateway checks the rest.
	if s.cfg.Log.Format == "" {
		s.cfg.Log.Format = defaultLogFormat
	}
	if s.cfg.Log.Level == "" {
		s.cfg.Log.Level = defaultLogLevel
	}
	switch strings.ToLower(s.cfg.Log.Format) {
	case "text", "json":
		s.cfg.Log.Format = strings.ToLower(s.cfg.Log.Format)
	default:
		return nil, s.errorAt("log.format", fmt.Sprintf("want text or json, got %q", s.cfg.Log.Format))
	}
	switch strings.ToLower(s.cfg.Log.Level) {
	case "debug":
		s.logLevel = slog.LevelDebug
	case "info":
		s.logLevel = slog.LevelInfo
	case "warn", "warning":
		s.logLevel = slog.LevelWarn
	case "error":
		s.logLevel = slog.LevelError
	default:
		return nil, s.errorAt("log.level", fmt.Sprintf("want debug, info, warn or error, got %q", s.cfg.Log.Level))
	}
	return s, nil
}

// gatewayConfig returns the gateway's part of the settings.
func (s *settings) gatewayConfig() gateway.Config { return s.cfg.Config }

// explain turns an error of gateway.New into one that names the setting the
// way the user gave it; other errors are returned as they are.
func (s *settings) explain(err error) error {
	var ce *gateway.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	reason := ce.Reason
	if r, ok := s.routeOf(ce.Key); ok && strings.HasSuffix(ce.Key, ".behaviour") {
		reason = behaviourReason(r.Behaviour)
	}
	return s.errorAt(ce.Key, reason)
}

// behaviourReason says why the binary refuses a route's behaviour. The
// gateway package also knows custom, whose connections go to a Go Handler
// that only a program embedding the package can give: the binary does not
// offer it.
func behaviourReason(b gateway.Behaviour) string {
	if b == gateway.Custom {
		return "custom routes need a Go Handler and only work in a program that embeds the gateway package; the binary serves echo, pubsub and bridge"
	}
	return fmt.Sprintf("want echo, pubsub or bridge, got %q", b)
}

// routeOf returns the route a YAML path such as "routes[2].behaviour"
// names.
func (s *settings) routeOf(key string) (gateway.Route, bool) {
	rest, ok := strings.CutPrefix(key, routesKey+"[")
	if !ok {
		return gateway.Route{}, false
	}
	n, _, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(n)
	if !ok || err != nil || i < 0 || i >= len(s.cfg.Routes) {
		return gateway.Route{}, false
	}
	return s.cfg.Routes[i], true
}

// errorAt returns a configError for the YAML path key (such as
// "limits.max_message" or "routes[1].path"), named after the source of the
// setting that holds it.
func (s *settings) errorAt(key, reason string) *configError {
	owner := s.ownerOf(key)
	src := s.sources[owner]
	switch src.kind {
	case fromFile:
		where := src.name
		if line := s.lineOf(key); line > 0 {
			where += ":" + strconv.Itoa(line)
		}
		return &configError{where: where + ": " + key, reason: reason}
	case fromEnv, fromFlag:
		where := src.name
		if key != owner {
			where += " (" + key + ")"
		}
		return &configError{where: where, reason: reason}
	}
	if o := s.byKey[owner]; o != nil {
		return &configError{where: "--" + o.flag + " (default)", reason: reason}
	}
	return &configError{where: key, reason: reason}
}

// ownerOf returns the option key (or routesKey) that holds the YAML path
// key: "routes[1].path" belongs to "routes", "trusted_proxies[0]" to
// "trusted_proxies".
func (s *settings) ownerOf(key string) string {
	for k := key; k != ""; {
		if _, ok := s.byKey[k]; ok || k == routesKey {
			return k
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return key
}

// lineOf returns the file's line of key or of its nearest enclosing key.
func (s *settings) lineOf(key string) int {
	for k := key; k != ""; {
		if line, ok := s.lines[k]; ok {
			return line
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// rawValue records a flag's text as given, in raw under the flag's name.
// Flags are parsed after the file and the environment are read, so that
// their errors name the flag.
type rawValue struct {
	raw    map[string]string
	name   string
	isBool bool
	repeat bool // a repeated flag adds to the list: its values are joined with commas
}

func (v *rawValue) String() string { return "" }
func (v *rawValue) Set(s string) error {
	if prev, ok := v.raw[v.name]; ok && v.repeat {
		s = prev + "," + s
	}
	v.raw[v.name] = s
	return nil
}
func (v *rawValue) IsBoolFlag() bool { return v.isBool }

type routeFlag struct{ s *settings }

func (r routeFlag) String() string { return "" }
func (r routeFlag) Set(v string) error {
	r.s.flagRoute = append(r.s.flagRoute, v)
	return nil
}

// newFlagSet returns the binary's flags, whose raw values land in the
// returned map by flag name.
func newFlagSet(s *settings) (*flag.FlagSet, map[string]string) {
	raw := map[string]string{}
	fs := flag.NewFlagSet("upgate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Var(&rawValue{raw: raw, name: "config"}, "config", "")
	for i := range options {
		o := &options[i]
		_, isBool := o.field(&fileConfig{}).(*bool)
		fs.Var(&rawValue{raw: raw, name: o.flag, isBool: isBool, repeat: o.repeat}, o.flag, "")
	}
	fs.Var(routeFlag{s}, "route", "")
	fs.BoolVar(&s.version, "version", false, "")
	return fs, raw
}

// parseValue parses text into the field ptr points to. The syntax is the same
// for flags and environment variables: whole numbers in base 10, durations
// with units, lists separated by commas.
func parseValue(ptr any, text string) error {
	s := strings.TrimSpace(text)
	switch p := ptr.(type) {
	case *string:
		*p = s
	case *int:
		n, err := strconv.ParseInt(s, 10, strconv.IntSize)
		if err != nil {
			return numError("a whole number", text, err)
		}
		*p = int(n)
	case *int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return numError("a whole number", text, err)
		}
		*p = n
	case *float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return numError("a number", text, err)
		}
		*p = f
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", text)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration with a unit such as 500ms, 10s or 2m, got %q", text)
		}
		*p = d
	case *[]string:
		var list []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		*p = list
	default:
		panic(fmt.Sprintf("upgate: no parser for %T", ptr))
	}
	return nil
}

func numError(want, text string, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%q is out of range", text)
	}
	return fmt.Errorf("want %s, got %q", want, text)
}

// parseRoute parses a --route value:
// PATH=BEHAVIOUR[,publish][,plain_http][,auth][,no_deflate][,subject=SUBJECT]
// [,upstream=HOST:PORT][,connect_timeout=DURATION][,max_tunnels=N].
func parseRoute(spec string) (gateway.Route, error) {
	path, rest, ok := strings.Cut(spec, "=")
	if !ok || path == "" || rest == "" {
		return gateway.Route{}, errors.New("want PATH=BEHAVIOUR[,OPTION...], such as /ws/{topic}=pubsub,publish or /db=tcp,upstream=127.0.0.1:5432")
	}
	parts := strings.Split(rest, ",")
	r := gateway.Route{Path: path, Behaviour: gateway.Behaviour(parts[0])}
	for _, p := range parts[1:] {
		switch p {
		case "publish":
			r.Publish = true
		case "plain_http", "plain-http":
			r.PlainHTTP = true
		case "auth":
			r.Auth = true
		case "no_deflate", "no-deflate":
			r.NoDeflate = true
		default:
			if s, ok := strings.CutPrefix(p, "subject="); ok {
				r.Subject = s
				continue
			}
			if s, ok := strings.CutPrefix(p, "upstream="); ok {
				r.Upstream = s
				continue
			}
			if s, ok := strings.CutPrefix(p, "connect_timeout="); ok {
				if err := parseValue(&r.ConnectTimeout, s); err != nil {
					return gateway.Route{}, fmt.Errorf("route option connect_timeout: %w", err)
				}
				continue
			}
			if s, ok := strings.CutPrefix(p, "max_tunnels="); ok {
				if err := parseValue(&r.MaxTunnels, s); err != nil {
					return gateway.Route{}, fmt.Errorf("route option max_tunnels: %w", err)
				}
				continue
			}
			return gateway.Route{}, fmt.Errorf("unknown route option %q: want publish, plain_http, auth, no_deflate, subject=SUBJECT, upstream=HOST:PORT, connect_timeout=DURATION or max_tunnels=N", p)
		}
	}
	return r, nil
}

// unwrapPathError drops the path an *os.PathError repeats.
func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
