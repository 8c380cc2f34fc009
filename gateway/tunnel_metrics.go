package gateway

// The tunnel routes' metric families, appended to metricDefs: only tcp and
// websockify routes have samples.
func init() {
	metricDefs = append(metricDefs,
		metricDef{
			name: "upgate_tunnels_open", typ: gauge, labels: []string{"route"}, tunnel: true,
			help: "Tunnels open (tcp and websockify routes), from the upstream connect to the end of the splice, by route.",
			collect: func(s *scrape, e emit) {
				for _, rt := range s.g.tunnelRoutes() {
					e.value(float64(rt.tunnels.open.Load()), rt.stats.label)
				}
			},
		},
		metricDef{
			name: "upgate_tunnels_total", typ: counter, tunnel: true, labels: []string{"route"},
			help: "Tunnels spliced (their 101 written), by route.",
			collect: func(s *scrape, e emit) {
				for _, rt := range s.g.tunnelRoutes() {
					e.value(float64(rt.tunnels.total.Load()), rt.stats.label)
				}
			},
		},
		metricDef{
			name: "upgate_tunnel_bytes_total", typ: counter, tunnel: true, labels: []string{"route", "direction"},
			help: "Bytes carried by ended tunnels, by route and direction (up: client to upstream, down: upstream to client; websockify: payload bytes).",
			collect: func(s *scrape, e emit) {
				for _, rt := range s.g.tunnelRoutes() {
					e.value(float64(rt.tunnels.bytesUp.Load()), rt.stats.label, "up")
					e.value(float64(rt.tunnels.bytesDown.Load()), rt.stats.label, "down")
				}
			},
		},
		metricDef{
			name: "upgate_tunnel_connect_failures_total", typ: counter, tunnel: true, labels: []string{"route", "reason"},
			help: "Upstream connects that failed, by route and reason (refused: answered 502, timeout: 504).",
			collect: func(s *scrape, e emit) {
				for _, rt := range s.g.tunnelRoutes() {
					e.value(float64(rt.tunnels.refused.Load()), rt.stats.label, "refused")
					e.value(float64(rt.tunnels.timeouts.Load()), rt.stats.label, "timeout")
				}
			},
		},
		metricDef{
			name: "upgate_tunnel_connect_seconds", typ: histogramType, tunnel: true, labels: []string{"route"},
			help: "Time to connect to the upstream, of successful connects, by route.",
			collect: func(s *scrape, e emit) {
				for _, rt := range s.g.tunnelRoutes() {
					n, sum, b := rt.tunnels.connectHist.snapshot()
					e.histogram(n, sum, b, rt.stats.label)
				}
			},
		},
	)
}

// tunnelRoutes returns the tcp and websockify routes.
func (g *Gateway) tunnelRoutes() []*route {
	var out []*route
	for _, rt := range g.routes.all {
		if rt.kind == kindTunnel {
			out = append(out, rt)
		}
	}
	return out
}
