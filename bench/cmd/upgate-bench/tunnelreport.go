package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// TunnelInfo is the outcome of a tunnel run.
type TunnelInfo struct {
	Direction string `json:"direction"`
	// Verified: every byte received was checked against the stream sent.
	Verified bool   `json:"verified"`
	Upstream string `json:"upstream"`
	// Bytes is the stream bytes received at the far end (the upstream
	// sink, the client, or both) while measured; SentBytes those written.
	Bytes     int64   `json:"bytes"`
	SentBytes int64   `json:"sent_bytes"`
	MiBPerSec float64 `json:"mib_per_sec"`
	// ServerCPUPerMiBUs is the server's CPU time (user+system) per MiB
	// received, ServerUserPerMiBUs its user-space part.
	ServerCPUPerMiBUs  float64 `json:"server_cpu_per_mib_us"`
	ServerUserPerMiBUs float64 `json:"server_user_per_mib_us"`
	ClientCPUPerMiBUs  float64 `json:"client_cpu_per_mib_us"`
}

// tunnelSection is the report section of a tunnel run: its direction.
func tunnelSection(r *Result) string {
	if r.Tunnel == nil {
		return r.Scenario
	}
	return r.Scenario + "-" + r.Tunnel.Direction
}

// tunnelDirs are the tunnel sections in report order, with their titles.
var tunnelDirs = []struct{ section, title string }{
	{"tunnel-up", "Tunnels, client to upstream (upload)"},
	{"tunnel-down", "Tunnels, upstream to client (download)"},
	{"tunnel-both", "Tunnels, both ways at once"},
}

// tunnelGroups splits the groups of a tunnel section by tunnel count,
// fewest first, upgate before the baseline.
func tunnelGroups(gs []*group) []*group {
	var out []*group
	for _, g := range gs {
		byN := map[int]*group{}
		var ns []int
		for _, r := range g.runs {
			n := r.Settings.Conns
			if byN[n] == nil {
				byN[n] = &group{scenario: g.scenario, server: g.server, variant: g.variant, loops: g.loops}
				ns = append(ns, n)
			}
			byN[n].runs = append(byN[n].runs, r)
		}
		for _, n := range ns {
			out = append(out, byN[n])
		}
	}
	conns := func(g *group) int { return g.runs[0].Settings.Conns }
	sort.SliceStable(out, func(i, j int) bool {
		if conns(out[i]) != conns(out[j]) {
			return conns(out[i]) < conns(out[j])
		}
		return rank(out[i].server) < rank(out[j].server)
	})
	return out
}

func tunnelField(f func(*TunnelInfo) float64) func(*Result) float64 {
	return func(r *Result) float64 {
		if r.Tunnel == nil {
			return math.NaN()
		}
		return f(r.Tunnel)
	}
}

var (
	tunMiBps    = tunnelField(func(t *TunnelInfo) float64 { return t.MiBPerSec })
	tunSrvMiB   = tunnelField(func(t *TunnelInfo) float64 { return t.ServerCPUPerMiBUs })
	tunUsrMiB   = tunnelField(func(t *TunnelInfo) float64 { return t.ServerUserPerMiBUs })
	tunCliMiB   = tunnelField(func(t *TunnelInfo) float64 { return t.ClientCPUPerMiBUs })
	setupP50    = func(r *Result) float64 { return latOf(r.HandshakeLatency, func(l *Latency) float64 { return l.P50 }) }
	setupP99    = func(r *Result) float64 { return latOf(r.HandshakeLatency, func(l *Latency) float64 { return l.P99 }) }
	tunnelsLost = func(r *Result) float64 { return float64(r.Lost + r.Failed) }
)

func latOf(l *Latency, f func(*Latency) float64) float64 {
	if l == nil {
		return math.NaN()
	}
	return f(l)
}

// tunnelTable has a row per tunnel count and server; "vs splice" compares
// the server's CPU per MiB with the splice baseline's at the same count.
func tunnelTable(gs []*group) *table {
	t := &table{head: []string{"tunnels", "server", "MiB/s", "server CPU µs/MiB", "vs splice", "of which user µs",
		"client CPU µs/MiB", "server CPU %", "client CPU %", "other CPU %", "setup p50 µs", "setup p99 µs", "lost", "runs", "notes"}}
	rows := tunnelGroups(gs)
	for _, g := range rows {
		n := g.runs[0].Settings.Conns
		base := math.NaN()
		for _, b := range rows {
			if b.server == "splice" && b.runs[0].Settings.Conns == n {
				base = b.med(tunSrvMiB)
			}
		}
		v := g.med(tunSrvMiB)
		t.rows = append(t.rows, []string{strconv.Itoa(n), g.server, num(g.med(tunMiBps), 0), num(v, 0), ratio(v, base),
			num(g.med(tunUsrMiB), 0), num(g.med(tunCliMiB), 0),
			num(g.med(srvUtil), 0), num(g.med(cliUtil), 0), num(g.med(othUtil), 0),
			num(g.med(setupP50), 0), num(g.med(setupP99), 0), num(g.med(tunnelsLost), 0), strconv.Itoa(len(g.runs)), g.notes()})
	}
	return t
}

// tunnelSettings describes a tunnel section's runs.
func tunnelSettings(gs []*group) string {
	r := gs[0].runs[0]
	s := r.Settings
	var ns []int
	for _, g := range gs {
		for _, x := range g.runs {
			if !slices.Contains(ns, x.Settings.Conns) {
				ns = append(ns, x.Settings.Conns)
			}
		}
	}
	slices.Sort(ns)
	counts := make([]string, len(ns))
	for i, n := range ns {
		counts[i] = strconv.Itoa(n)
	}
	check := "every byte received checked against the stream sent"
	if r.Tunnel != nil && !r.Tunnel.Verified {
		check = "bytes received discarded unchecked (MSG_TRUNC)"
	}
	return fmt.Sprintf("%s tunnels on %s (\"Upgrade: tcp\"), %d-byte writes, warm-up %gs, measured %gs; "+
		"the upstream sink and source run in the client's process, on its core; %s; "+
		"setup latency: %d tunnels opened one at a time, connect to 101 (the server dials the upstream before its 101); "+
		"source addresses spread over %d loopback IPs",
		strings.Join(counts, ", "), s.Path, s.Size, s.Warmup, s.Duration, check, s.Setups, s.Sources)
}
