package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// The metrics are plain atomic counters, read at scrape time by the
// gateway's Prometheus collector (collector.go). Nothing is counted per
// message here: message and byte counts come from the loop's per-loop
// counters, summed by loop.Server.Stats when scraped. Per-route counters are
// resolved when the handshake picks the route and touched once per
// connection event (handshake, open, close) or per publish.

// handshakeStatuses are the statuses counted one by one; others go to the
// last slot, labelled "other".
var handshakeStatuses = [...]int{101, 200, 400, 401, 403, 404, 405, 426, 429, 500, 501, 502, 503, 504}

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
	deflate    atomic.Uint64 // connections opened with permessage-deflate
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
	rejExtensions
	rejTunnel
	numRejections
)

var rejectionNames = [numRejections]string{
	"max_connections", "connect_rate", "origin", "subprotocol", "topic",
	"authorize", "max_message", "publish_denied", "extensions", "tunnel",
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
	busDelivered  atomic.Uint64             // frames handed to subscribers by topic messages from the bus
	refused       [numSources]atomic.Uint64 // publishes refused because a loop was behind
	handshakeTime histogram
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

// newMetrics builds the gateway's own registry (not the global one: a
// process may run several gateways): the gateway's collector, and the Go
// runtime (go_*) and process (process_*) collectors.
func (g *Gateway) newMetrics() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(g),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	g.metrics = reg
	// A collector that fails (the process collector where /proc is
	// unreadable) is logged and the rest is served.
	g.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{g.log},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// promLogger logs promhttp's errors.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("gateway: serving metrics", "err", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

// WriteMetrics writes every metric /metrics serves (the gateway's, the Go
// runtime's and the process's) to w, any io.Writer (a file, a buffer, the
// response of a program's own handler), in the Prometheus text format,
// version 0.0.4. When a collector fails, the others are still written and
// the error is returned. Any goroutine; it allocates.
func (g *Gateway) WriteMetrics(w io.Writer) error {
	mfs, gerr := g.metrics.Gather()
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("gateway: writing metrics: %w", err)
		}
	}
	if gerr != nil {
		return fmt.Errorf("gateway: gathering metrics: %w", gerr)
	}
	return nil
}
