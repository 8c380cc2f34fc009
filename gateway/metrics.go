package gateway

import (
	"bufio"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/gateway/bus"
)

// The metrics are plain atomic counters, written in the Prometheus text
// exposition format (version 0.0.4) at scrape time. Nothing is counted per
// message here: message and byte counts come from the loop's per-loop
// counters, summed by loop.Server.Stats when scraped. Per-route counters are
// resolved when the handshake picks the route and touched once per
// connection event (handshake, open, close) or per publish.

// handshakeStatuses are the statuses counted one by one; others go to the
// last slot, labelled "other".
var handshakeStatuses = [...]int{101, 200, 400, 401, 403, 404, 426, 429, 500, 503}

func statusIndex(status int) int {
	for i, s := range handshakeStatuses {
		if s == status {
			return i
		}
	}
	return len(handshakeStatuses)
}

func statusLabel(i int) string {
	if i < len(handshakeStatuses) {
		return strconv.Itoa(handshakeStatuses[i])
	}
	return "other"
}

// closeSlot maps close codes 1000-1015 to 0-15, others to 16.
func closeSlot(code ws.StatusCode) int {
	if code >= 1000 && code <= 1015 {
		return int(code - 1000)
	}
	return 16
}

// routeStats are the counters of one route (or of a pseudo route: the
// health paths, unknown paths).
type routeStats struct {
	label      string
	open       atomic.Int64
	handshakes [len(handshakeStatuses) + 1]atomic.Uint64 // WebSocket handshakes by answer
	plain      [len(handshakeStatuses) + 1]atomic.Uint64 // plain HTTP requests by answer
	closes     [17]atomic.Uint64
	publishes  atomic.Uint64 // messages published by the route's clients
	deliveries atomic.Uint64 // frames those publishes handed to subscribers
}

func (s *routeStats) handshake(status int) { s.handshakes[statusIndex(status)].Add(1) }
func (s *routeStats) http(status int)      { s.plain[statusIndex(status)].Add(1) }

// Rejection reasons counted by upgate_rejections_total.
const (
	rejMaxConnections = iota
	rejConnectRate
	rejOrigin
	rejSubprotocol
	rejTopic
	rejAuthorize
	rejMaxMessage
	rejPublishDenied
	numRejections
)

var rejectionNames = [numRejections]string{
	"max_connections", "connect_rate", "origin", "subprotocol", "topic",
	"authorize", "max_message", "publish_denied",
}

// latencyBuckets are the upper bounds of the handshake latency histogram.
var latencyBuckets = [...]time.Duration{
	time.Microsecond, 2500 * time.Nanosecond, 5 * time.Microsecond,
	10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second,
}

type histogram struct {
	counts [len(latencyBuckets) + 1]atomic.Uint64 // not cumulative; last is +Inf
	sum    atomic.Int64                           // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(latencyBuckets) && d > latencyBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// gatewayStats are the counters that belong to no route.
type gatewayStats struct {
	rejections    [numRejections]atomic.Uint64
	apiPublishes  atomic.Uint64
	apiDelivered  atomic.Uint64
	busDelivered  atomic.Uint64 // frames handed to subscribers by topic messages from the bus
	handshakeTime histogram
}

// promWriter writes the text exposition format.
type promWriter struct{ w *bufio.Writer }

func (p promWriter) family(name, typ, help string) {
	p.w.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

// sample writes one line; labels alternate names and values.
func (p promWriter) sample(name string, v float64, labels ...string) {
	p.w.WriteString(name)
	if len(labels) > 0 {
		p.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.w.WriteByte(',')
			}
			p.w.WriteString(labels[i] + `="` + escapeLabel(labels[i+1]) + `"`)
		}
		p.w.WriteByte('}')
	}
	p.w.WriteByte(' ')
	p.w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	p.w.WriteByte('\n')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// writeMetrics writes every metric. Any goroutine; it allocates.
func (g *Gateway) writeMetrics(out io.Writer) error {
	bw := bufio.NewWriterSize(out, 16<<10)
	p := promWriter{bw}
	snap := g.srv.Stats()
	routes := g.allStats()

	p.family("upgate_tcp_connections_open", "gauge", "TCP connections open on the public listener.")
	p.sample("upgate_tcp_connections_open", float64(snap.ConnsOpen))
	p.family("upgate_tcp_connections_total", "counter", "TCP connections accepted on the public listener.")
	p.sample("upgate_tcp_connections_total", float64(snap.ConnsTotal))

	p.family("upgate_websocket_connections_open", "gauge", "WebSocket connections open, by route.")
	for _, s := range routes[3:] {
		p.sample("upgate_websocket_connections_open", float64(s.open.Load()), "route", s.label)
	}

	p.family("upgate_handshakes_total", "counter", "WebSocket handshake requests by route and answer (result accepted is status 101).")
	for _, s := range routes {
		for i := range s.handshakes {
			n := s.handshakes[i].Load()
			if n == 0 && (i != 0 || s == &g.unrouted || s == &g.health || s == &g.ready) {
				continue
			}
			result := "rejected"
			if i == 0 {
				result = "accepted"
			}
			p.sample("upgate_handshakes_total", float64(n), "route", s.label, "result", result, "status", statusLabel(i))
		}
	}

	p.family("upgate_handshake_duration_seconds", "histogram", "Time from accepting the TCP connection to writing the 101 response of its WebSocket handshake (the client's sending of its request head, and of the PROXY protocol header, included).")
	var cum uint64
	h := &g.stats.handshakeTime
	for i, b := range latencyBuckets {
		cum += h.counts[i].Load()
		p.sample("upgate_handshake_duration_seconds_bucket", float64(cum), "le", strconv.FormatFloat(b.Seconds(), 'g', -1, 64))
	}
	cum += h.counts[len(latencyBuckets)].Load()
	p.sample("upgate_handshake_duration_seconds_bucket", float64(cum), "le", "+Inf")
	p.sample("upgate_handshake_duration_seconds_sum", time.Duration(h.sum.Load()).Seconds())
	p.sample("upgate_handshake_duration_seconds_count", float64(cum))

	p.family("upgate_http_requests_total", "counter", "Plain HTTP requests answered by the gateway, by route and status.")
	for _, s := range routes {
		for i := range s.plain {
			if n := s.plain[i].Load(); n != 0 {
				p.sample("upgate_http_requests_total", float64(n), "route", s.label, "status", statusLabel(i))
			}
		}
	}

	p.family("upgate_http_errors_total", "counter", "Error responses written on the public listener, including malformed requests and handshakes the parser refused, by status.")
	statuses := make([]int, 0, len(snap.Rejected))
	for st := range snap.Rejected {
		statuses = append(statuses, st)
	}
	sort.Ints(statuses)
	for _, st := range statuses {
		label := strconv.Itoa(st)
		if st == 0 {
			label = "other"
		}
		p.sample("upgate_http_errors_total", float64(snap.Rejected[st]), "status", label)
	}

	p.family("upgate_messages_received_total", "counter", "WebSocket messages received.")
	p.sample("upgate_messages_received_total", float64(snap.MessagesIn))
	p.family("upgate_received_bytes_total", "counter", "Payload bytes of the WebSocket messages received.")
	p.sample("upgate_received_bytes_total", float64(snap.BytesIn))
	p.family("upgate_messages_sent_total", "counter", "WebSocket data frames sent.")
	p.sample("upgate_messages_sent_total", float64(snap.MessagesOut))
	p.family("upgate_sent_bytes_total", "counter", "Payload bytes of the WebSocket data frames sent.")
	p.sample("upgate_sent_bytes_total", float64(snap.BytesOut))

	p.family("upgate_closes_total", "counter", "WebSocket connections ended, by route and close code (1006: no close frame).")
	for _, s := range routes[3:] {
		for i := range s.closes {
			if n := s.closes[i].Load(); n != 0 {
				code := "other"
				if i < 16 {
					code = strconv.Itoa(1000 + i)
				}
				p.sample("upgate_closes_total", float64(n), "route", s.label, "code", code)
			}
		}
	}

	p.family("upgate_slow_consumers_total", "counter", "Connections closed with 1008 because their outbound queue was over limits.max_outbound.")
	p.sample("upgate_slow_consumers_total", float64(snap.SlowConsumers))

	p.family("upgate_rejections_total", "counter", "Handshakes refused and connections closed by a limit or policy, by reason.")
	for i, name := range rejectionNames {
		p.sample("upgate_rejections_total", float64(g.stats.rejections[i].Load()), "reason", name)
	}
	p.sample("upgate_rejections_total", float64(snap.ProxyErrors), "reason", "proxy_protocol")
	p.sample("upgate_rejections_total", float64(snap.FDRefused), "reason", "fd_limit")

	p.family("upgate_protocol_errors_total", "counter", "Connections failed for violating RFC 6455 (including messages over the size limit).")
	p.sample("upgate_protocol_errors_total", float64(snap.ProtocolErrors))
	p.family("upgate_pings_sent_total", "counter", "Pings sent to silent connections.")
	p.sample("upgate_pings_sent_total", float64(snap.PingsSent))
	p.family("upgate_timeouts_total", "counter", "Connections ended by a timer, by kind.")
	p.sample("upgate_timeouts_total", float64(snap.HandshakeTimeouts), "kind", "handshake")
	p.sample("upgate_timeouts_total", float64(snap.IdleTimeouts), "kind", "idle")
	p.sample("upgate_timeouts_total", float64(snap.PongTimeouts), "kind", "pong")
	p.sample("upgate_timeouts_total", float64(snap.CloseTimeouts), "kind", "close")

	p.family("upgate_publishes_total", "counter", "Messages published to topics, by source (api: Gateway.Publish and the admin API; client: by route).")
	p.sample("upgate_publishes_total", float64(g.stats.apiPublishes.Load()), "source", "api", "route", "")
	for _, rt := range g.routes.all {
		if rt.kind == kindPubSub {
			p.sample("upgate_publishes_total", float64(rt.stats.publishes.Load()), "source", "client", "route", rt.Path)
		}
	}
	p.family("upgate_publish_deliveries_total", "counter", "Frames handed to subscribers by publishes, by source.")
	p.sample("upgate_publish_deliveries_total", float64(g.stats.apiDelivered.Load()), "source", "api", "route", "")
	for _, rt := range g.routes.all {
		if rt.kind == kindPubSub {
			p.sample("upgate_publish_deliveries_total", float64(rt.stats.deliveries.Load()), "source", "client", "route", rt.Path)
		}
	}

	p.family("upgate_topics", "gauge", "Topics with at least one subscriber.")
	p.sample("upgate_topics", float64(g.topics.count()))
	p.family("upgate_draining", "gauge", "1 while the gateway is shutting down.")
	draining := 0.0
	if g.draining.Load() {
		draining = 1
	}
	p.sample("upgate_draining", draining)
	p.family("upgate_handshakes_waiting", "gauge", "WebSocket handshakes waiting for an authorisation answer.")
	p.sample("upgate_handshakes_waiting", float64(snap.Waiting))
	if g.bus != nil {
		g.writeBusMetrics(p)
	}
	return bw.Flush()
}

// writeBusMetrics writes the bus's counters.
func (g *Gateway) writeBusMetrics(p promWriter) {
	s := g.bus.Stats()
	up := 0.0
	if s.State == bus.StateConnected {
		up = 1
	}
	p.family("upgate_bus_connected", "gauge", "1 while the gateway is connected to NATS.")
	p.sample("upgate_bus_connected", up, "node", g.bus.Node())
	p.family("upgate_bus_disconnects_total", "counter", "Times the connection to NATS was lost.")
	p.sample("upgate_bus_disconnects_total", float64(s.Disconnects))
	p.family("upgate_bus_reconnects_total", "counter", "Times the connection to NATS came back.")
	p.sample("upgate_bus_reconnects_total", float64(s.Reconnects))
	p.family("upgate_bus_messages_total", "counter", "Messages published to (out) and received from (in) NATS, by kind: in (bridged client messages), topic, conn, event, auth.")
	for k, name := range bus.KindNames {
		if k == bus.KindIn || k == bus.KindEvent {
			p.sample("upgate_bus_messages_total", float64(s.Out[k]), "direction", "out", "kind", name)
			continue
		}
		p.sample("upgate_bus_messages_total", float64(s.Out[k]), "direction", "out", "kind", name)
		p.sample("upgate_bus_messages_total", float64(s.In[k]), "direction", "in", "kind", name)
	}
	p.family("upgate_bus_undeliverable_total", "counter", "Messages that could not be forwarded to NATS or delivered from it, by reason.")
	for r, name := range bus.ReasonNames {
		p.sample("upgate_bus_undeliverable_total", float64(s.Undeliverable[r]), "reason", name)
	}
	p.family("upgate_bus_topics", "gauge", "Topic subjects this node subscribes to (topics with local subscribers).")
	p.sample("upgate_bus_topics", float64(s.Topics))
	p.family("upgate_bus_topic_deliveries_total", "counter", "Frames handed to local subscribers by topic messages from NATS.")
	p.sample("upgate_bus_topic_deliveries_total", float64(g.stats.busDelivered.Load()))
	p.family("upgate_auth_requests_total", "counter", "Authorisation requests on NATS, by result.")
	for o, name := range bus.OutcomeNames {
		p.sample("upgate_auth_requests_total", float64(s.Auth[o]), "result", name)
	}
	p.family("upgate_auth_pending", "gauge", "Authorisation requests waiting for an answer.")
	p.sample("upgate_auth_pending", float64(s.AuthPending))
}

// allStats lists the pseudo routes (health, ready, unrouted) then the
// configured routes.
func (g *Gateway) allStats() []*routeStats {
	s := []*routeStats{&g.health, &g.ready, &g.unrouted}
	for _, rt := range g.routes.all {
		s = append(s, &rt.stats)
	}
	return s
}
