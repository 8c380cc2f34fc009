package gateway

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/gateway/tlscert"
	"github.com/upgate/upgate/loop"
)

// The gateway's metrics are a prometheus.Collector that reads the atomic
// counters of the loops, the routes and the bus when scraped: nothing on the
// hot path knows about Prometheus. Each family is one entry of metricDefs;
// adding a metric is adding an entry (and a row to the README's table, which
// TestMetricsDocumented checks).

// metricType is the Prometheus type of a family.
type metricType int

const (
	counter metricType = iota
	gauge
	histogramType
)

// metricDef is one metric family: its name, help, type and variable labels,
// and how to read its samples from a scrape.
type metricDef struct {
	name   string
	typ    metricType
	labels []string // in the order collect passes their values
	help   string
	bus    bool // only with a bus (Config.NATS)
	tls    bool // only with a TLS listener (Config.TLS)
	tunnel bool // samples only with tcp or websockify routes
	// collect emits the family's samples: e.value or e.histogram, once per
	// combination of label values.
	collect func(s *scrape, e emit)
}

// scrape is what one Collect reads: each source is read once.
type scrape struct {
	g      *Gateway
	loop   loop.Snapshot
	routes []*routeStats  // pseudo routes (health, ready, unrouted), then the configured ones
	bus    bus.Stats      // zero without a bus
	certs  []tlscert.Info // nil without a TLS listener
	certSt tlscert.Stats
	now    time.Time
}

// configured returns the configured routes' counters.
func (s *scrape) configured() []*routeStats { return s.routes[3:] }

// emit sends the samples of one family.
type emit struct {
	ch   chan<- prometheus.Metric
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

// value sends a counter or gauge sample.
func (e emit) value(v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(e.desc, e.typ, v, labels...)
}

// histogram sends a histogram sample: count observations summing to sum,
// buckets the cumulative counts by upper bound (without +Inf, which is count).
func (e emit) histogram(count uint64, sum float64, buckets map[float64]uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstHistogram(e.desc, count, sum, buckets, labels...)
}

// snapshot reads h for emit.histogram.
func (h *histogram) snapshot() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(latencyBuckets))
	for i, b := range latencyBuckets {
		count += h.counts[i].Load()
		buckets[b.Seconds()] = count
	}
	count += h.counts[len(latencyBuckets)].Load()
	return count, time.Duration(h.sum.Load()).Seconds(), buckets
}

// collector is the gateway's prometheus.Collector.
type collector struct {
	g     *Gateway
	descs []*prometheus.Desc // by metricDefs index
}

func newCollector(g *Gateway) *collector {
	c := &collector{g: g, descs: make([]*prometheus.Desc, len(metricDefs))}
	for i, d := range metricDefs {
		c.descs[i] = prometheus.NewDesc(d.name, d.help, d.labels, nil)
	}
	return c
}

// Describe sends every family's descriptor, the bus's included.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads the counters and sends every family's samples.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	s := scrape{g: g, loop: g.srv.Stats(), routes: g.allStats()}
	if g.bus != nil {
		s.bus = g.bus.Stats()
	}
	if g.certs != nil {
		s.certs, s.certSt, s.now = g.certs.Certificates(), g.certs.Stats(), time.Now()
	}
	for i, d := range metricDefs {
		if d.bus && g.bus == nil || d.tls && g.certs == nil {
			continue
		}
		vt := prometheus.CounterValue
		if d.typ == gauge {
			vt = prometheus.GaugeValue
		}
		d.collect(&s, emit{ch: ch, desc: c.descs[i], typ: vt})
	}
}

// byListener sends a sample per listener the gateway has.
func (s *scrape) byListener(e emit, plain, tls float64) {
	if s.g.cfg.Listen != ListenOff {
		e.value(plain, "plain")
	}
	if s.g.certs != nil {
		e.value(tls, "tls")
	}
}

// value returns a collect function for an unlabelled family.
func value[T int | int64 | uint64](f func(s *scrape) T) func(*scrape, emit) {
	return func(s *scrape, e emit) { e.value(float64(f(s))) }
}

// boolValue is 1 for true and 0 for false.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricDefs are the gateway's metric families, in the order they are
// described. Keep README.md's metrics table in step.
var metricDefs = []metricDef{
	{
		name: "upgate_tcp_connections_open", typ: gauge, labels: []string{"listener"},
		help: "TCP connections open, by listener (plain, tls).",
		collect: func(s *scrape, e emit) {
			s.byListener(e, float64(s.loop.PlainConnsOpen()), float64(s.loop.TLSConnsOpen))
		},
	},
	{
		name: "upgate_tcp_connections_total", typ: counter, labels: []string{"listener"},
		help: "TCP connections accepted, by listener (plain, tls).",
		collect: func(s *scrape, e emit) {
			s.byListener(e, float64(s.loop.PlainConnsTotal()), float64(s.loop.TLSConnsTotal))
		},
	},
	{
		name: "upgate_tls_handshakes_total", typ: counter, tls: true,
		help:    "TLS handshakes completed on the TLS listener.",
		collect: value(func(s *scrape) uint64 { return s.loop.TLSHandshakes }),
	},
	{
		name: "upgate_tls_handshake_failures_total", typ: counter, labels: []string{"reason"}, tls: true,
		help: "TLS handshakes that failed, by reason: not_tls (plain HTTP, answered 400), bad_record, bad_hello, timeout, client_gone, unknown_sni, client_certificate, client_alert, version, handshake (any other).",
		collect: func(s *scrape, e emit) {
			for r := range loop.TLSFailure(loop.NumTLSFailures) {
				e.value(float64(s.loop.TLSFailuresBy[r]), r.String())
			}
		},
	},
	{
		name: "upgate_tls_handshakes_refused_total", typ: counter, tls: true,
		help:    "Connections to the TLS listener closed at their ClientHello because tls.max_handshakes handshakes were in progress.",
		collect: value(func(s *scrape) uint64 { return s.loop.TLSRefused }),
	},
	{
		name: "upgate_tls_certificate_expiry_seconds", typ: gauge, labels: []string{"index", "file", "name"}, tls: true,
		help: "Seconds until each served certificate expires (negative once it has), by its rank in tls.certs, file and first name.",
		collect: func(s *scrape, e emit) {
			for _, c := range s.certs {
				e.value(c.NotAfter.Sub(s.now).Seconds(), strconv.Itoa(c.Index), c.Cert, c.Name)
			}
		},
	},
	{
		name: "upgate_tls_certificate_reloads_total", typ: counter, labels: []string{"result"}, tls: true,
		help: "Reloads of the TLS certificate files (file changes and ReloadTLS, SIGHUP), by result: ok, or failed (the previous certificates still served).",
		collect: func(s *scrape, e emit) {
			e.value(float64(s.certSt.Reloads-s.certSt.Failures), "ok")
			e.value(float64(s.certSt.Failures), "failed")
		},
	},
	{
		name: "upgate_websocket_connections_open", typ: gauge, labels: []string{"route"},
		help: "WebSocket connections open, by route.",
		collect: func(s *scrape, e emit) {
			for _, r := range s.configured() {
				e.value(float64(r.open.Load()), r.label)
			}
		},
	},
	{
		name: "upgate_deflate_connections_total", typ: counter, labels: []string{"route"},
		help: "WebSocket connections opened with permessage-deflate, by route.",
		collect: func(s *scrape, e emit) {
			for _, r := range s.configured() {
				e.value(float64(r.deflate.Load()), r.label)
			}
		},
	},
	{
		name: "upgate_handshakes_total", typ: counter, labels: []string{"route", "result", "status"},
		help: "WebSocket handshake requests by route and answer (result accepted is status 101).",
		collect: func(s *scrape, e emit) {
			for j, r := range s.routes {
				for i := range r.handshakes {
					n := r.handshakes[i].Load()
					// Configured routes always show their accepted count.
					if n == 0 && (i != 0 || j < 3) {
						continue
					}
					result := "rejected"
					if i == 0 {
						result = "accepted"
					}
					e.value(float64(n), r.label, result, statusLabel(i))
				}
			}
		},
	},
	{
		name: "upgate_handshake_duration_seconds", typ: histogramType,
		help: "Time from accepting the TCP connection to writing the 101 response of its WebSocket handshake (the client's sending of its request head, and of the PROXY protocol header, included).",
		collect: func(s *scrape, e emit) {
			e.histogram(s.g.stats.handshakeTime.snapshot())
		},
	},
	{
		name: "upgate_http_requests_total", typ: counter, labels: []string{"route", "status"},
		help: "Plain HTTP requests answered by the gateway, by route and status.",
		collect: func(s *scrape, e emit) {
			for _, r := range s.routes {
				for i := range r.plain {
					if n := r.plain[i].Load(); n != 0 {
						e.value(float64(n), r.label, statusLabel(i))
					}
				}
			}
		},
	},
	{
		name: "upgate_http_errors_total", typ: counter, labels: []string{"status"},
		help: "Error responses written on the public listener, including malformed requests and handshakes the parser refused, by status.",
		collect: func(s *scrape, e emit) {
			for st, n := range s.loop.Rejected {
				label := "other"
				if st != 0 {
					label = strconv.Itoa(st)
				}
				e.value(float64(n), label)
			}
		},
	},
	{
		name: "upgate_messages_received_total", typ: counter,
		help:    "WebSocket messages received.",
		collect: value(func(s *scrape) uint64 { return s.loop.MessagesIn }),
	},
	{
		name: "upgate_received_bytes_total", typ: counter,
		help:    "Payload bytes of the WebSocket messages received, inflated when they came compressed.",
		collect: value(func(s *scrape) uint64 { return s.loop.BytesIn }),
	},
	{
		name: "upgate_messages_sent_total", typ: counter,
		help:    "WebSocket data frames sent.",
		collect: value(func(s *scrape) uint64 { return s.loop.MessagesOut }),
	},
	{
		name: "upgate_sent_bytes_total", typ: counter,
		help:    "Payload bytes of the WebSocket data frames sent, before compression.",
		collect: value(func(s *scrape) uint64 { return s.loop.BytesOut }),
	},
	{
		name: "upgate_closes_total", typ: counter, labels: []string{"route", "code"},
		help: "WebSocket connections ended, by route and close code (1006: no close frame).",
		collect: func(s *scrape, e emit) {
			for _, r := range s.configured() {
				for i := range r.closes {
					if n := r.closes[i].Load(); n != 0 {
						code := "other"
						if i < 16 {
							code = strconv.Itoa(1000 + i)
						}
						e.value(float64(n), r.label, code)
					}
				}
			}
		},
	},
	{
		name: "upgate_slow_consumers_total", typ: counter,
		help:    "Connections closed with 1008 because their outbound queue was over limits.max_outbound.",
		collect: value(func(s *scrape) uint64 { return s.loop.SlowConsumers }),
	},
	{
		name: "upgate_rejections_total", typ: counter, labels: []string{"reason"},
		help: "Handshakes refused and connections closed by a limit or policy, by reason.",
		collect: func(s *scrape, e emit) {
			for i, name := range rejectionNames {
				e.value(float64(s.g.stats.rejections[i].Load()), name)
			}
			e.value(float64(s.loop.ProxyErrors), "proxy_protocol")
			e.value(float64(s.loop.FDRefused), "fd_limit")
		},
	},
	{
		name: "upgate_protocol_errors_total", typ: counter,
		help:    "Connections failed for violating RFC 6455 (including messages over the size limit).",
		collect: value(func(s *scrape) uint64 { return s.loop.ProtocolErrors }),
	},
	{
		name: "upgate_pings_sent_total", typ: counter,
		help:    "Pings sent to silent connections.",
		collect: value(func(s *scrape) uint64 { return s.loop.PingsSent }),
	},
	{
		name: "upgate_timeouts_total", typ: counter, labels: []string{"kind"},
		help: "Connections ended by a timer, by kind.",
		collect: func(s *scrape, e emit) {
			e.value(float64(s.loop.HandshakeTimeouts), "handshake")
			e.value(float64(s.loop.IdleTimeouts), "idle")
			e.value(float64(s.loop.PongTimeouts), "pong")
			e.value(float64(s.loop.CloseTimeouts), "close")
		},
	},
	{
		name: "upgate_publishes_total", typ: counter, labels: []string{"source", "route"},
		help: "Messages published to topics, by source (api: Gateway.Publish and the admin API; client: by route).",
		collect: func(s *scrape, e emit) {
			e.value(float64(s.g.stats.apiPublishes.Load()), "api", "")
			for _, rt := range s.g.routes.all {
				if rt.kind == kindPubSub {
					e.value(float64(rt.stats.publishes.Load()), "client", rt.Path)
				}
			}
		},
	},
	{
		name: "upgate_publish_deliveries_total", typ: counter, labels: []string{"source", "route"},
		help: "Frames handed to subscribers by publishes, by source.",
		collect: func(s *scrape, e emit) {
			e.value(float64(s.g.stats.apiDelivered.Load()), "api", "")
			for _, rt := range s.g.routes.all {
				if rt.kind == kindPubSub {
					e.value(float64(rt.stats.deliveries.Load()), "client", rt.Path)
				}
			}
		},
	},
	{
		name: "upgate_publishes_refused_total", typ: counter, labels: []string{"source"},
		help: "Publishes refused as a whole because an event loop with subscribers was limits.max_loop_backlog behind, by source (api, client, bus).",
		collect: func(s *scrape, e emit) {
			for i, name := range sourceNames {
				e.value(float64(s.g.stats.refused[i].Load()), name)
			}
		},
	},
	{
		name: "upgate_loop_backlog_bytes", typ: gauge, labels: []string{"loop"},
		help: "Bytes of published frames queued to each event loop and not yet written.",
		collect: func(s *scrape, e emit) {
			for i := range s.g.queues {
				e.value(float64(s.g.queues[i].bytes.Load()), strconv.Itoa(i))
			}
		},
	},
	{
		name: "upgate_loop_lag_seconds", typ: histogramType, labels: []string{"loop"},
		help: "How late each event loop ran its timer ticks and the tasks handed to it.",
		collect: func(s *scrape, e emit) {
			for i := range s.g.srv.Loops() {
				h, ok := s.g.srv.LoopLag(i)
				if !ok {
					continue
				}
				buckets := make(map[float64]uint64, len(h.Bounds))
				for j, b := range h.Bounds {
					buckets[b.Seconds()] = h.Counts[j]
				}
				e.histogram(h.Count, h.Sum.Seconds(), buckets, strconv.Itoa(i))
			}
		},
	},
	{
		name: "upgate_listener_pauses_total", typ: counter,
		help:    "Times the public listener stopped taking connections because the file descriptor limit was near.",
		collect: value(func(s *scrape) uint64 { return s.loop.ListenerPauses }),
	},
	{
		name: "upgate_deadlines_deferred_total", typ: counter,
		help:    "Due deadlines (pong, idle, handshake) put off because input waited that the loop had not read yet.",
		collect: value(func(s *scrape) uint64 { return s.loop.DeadlinesDeferred }),
	},
	{
		name: "upgate_topics", typ: gauge,
		help:    "Topics with at least one subscriber.",
		collect: value(func(s *scrape) int { return s.g.topics.count() }),
	},
	{
		name: "upgate_draining", typ: gauge,
		help:    "1 while the gateway is shutting down.",
		collect: func(s *scrape, e emit) { e.value(boolValue(s.g.draining.Load())) },
	},
	{
		name: "upgate_handshakes_waiting", typ: gauge,
		help:    "WebSocket handshakes waiting for an authorisation answer.",
		collect: value(func(s *scrape) int64 { return s.loop.Waiting }),
	},
	{
		name: "upgate_bus_connected", typ: gauge, labels: []string{"node"}, bus: true,
		help: "1 while the gateway is connected to NATS.",
		collect: func(s *scrape, e emit) {
			e.value(boolValue(s.bus.State == bus.StateConnected), s.g.bus.Node())
		},
	},
	{
		name: "upgate_bus_disconnects_total", typ: counter, bus: true,
		help:    "Times the connection to NATS was lost.",
		collect: value(func(s *scrape) uint64 { return s.bus.Disconnects }),
	},
	{
		name: "upgate_bus_reconnects_total", typ: counter, bus: true,
		help:    "Times the connection to NATS came back.",
		collect: value(func(s *scrape) uint64 { return s.bus.Reconnects }),
	},
	{
		name: "upgate_bus_messages_total", typ: counter, labels: []string{"direction", "kind"}, bus: true,
		help: "Messages published to (out) and received from (in) NATS, by kind: in (bridged client messages), topic, conn, event, auth.",
		collect: func(s *scrape, e emit) {
			for k := range bus.NumKinds {
				name := bus.KindName(k)
				e.value(float64(s.bus.Out[k]), "out", name)
				// Bridged client messages and events are only published.
				if k != bus.KindIn && k != bus.KindEvent {
					e.value(float64(s.bus.In[k]), "in", name)
				}
			}
		},
	},
	{
		name: "upgate_bus_undeliverable_total", typ: counter, labels: []string{"reason"}, bus: true,
		help: "Messages that could not be forwarded to NATS or delivered from it, by reason.",
		collect: func(s *scrape, e emit) {
			for r := range bus.NumReasons {
				e.value(float64(s.bus.Undeliverable[r]), bus.ReasonName(r))
			}
		},
	},
	{
		name: "upgate_bus_topics", typ: gauge, bus: true,
		help:    "Topic subjects this node subscribes to (topics with local subscribers).",
		collect: value(func(s *scrape) int { return s.bus.Topics }),
	},
	{
		name: "upgate_bus_topic_deliveries_total", typ: counter, bus: true,
		help:    "Frames handed to local subscribers by topic messages from NATS.",
		collect: value(func(s *scrape) uint64 { return s.g.stats.busDelivered.Load() }),
	},
	{
		name: "upgate_auth_requests_total", typ: counter, labels: []string{"result"}, bus: true,
		help: "Authorisation requests on NATS, by result.",
		collect: func(s *scrape, e emit) {
			for o := range bus.NumOutcomes {
				e.value(float64(s.bus.Auth[o]), bus.OutcomeName(o))
			}
		},
	},
	{
		name: "upgate_auth_pending", typ: gauge, bus: true,
		help:    "Authorisation requests waiting for an answer.",
		collect: value(func(s *scrape) int { return s.bus.AuthPending }),
	},
}
