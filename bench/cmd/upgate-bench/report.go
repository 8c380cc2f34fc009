package main

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// group holds the repetitions of one scenario against one server variant
// with one number of loops.
type group struct {
	scenario, server, variant string
	loops                     int
	runs                      []*Result
}

// loopsOf is the number of loops r's server ran: 1 unless recorded.
func loopsOf(r *Result) int { return max(r.Settings.ServerLoops, 1) }

// med returns the median of f over the group's runs.
func (g *group) med(f func(*Result) float64) float64 {
	v := make([]float64, 0, len(g.runs))
	for _, r := range g.runs {
		v = append(v, f(r))
	}
	sort.Float64s(v)
	n := len(v)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// medianRun is the run whose key metric is the median (the lower middle).
func (g *group) medianRun(f func(*Result) float64) *Result {
	rs := slices.Clone(g.runs)
	sort.Slice(rs, func(i, j int) bool { return f(rs[i]) < f(rs[j]) })
	return rs[(len(rs)-1)/2]
}

func (g *group) notes() string {
	seen := map[string]bool{}
	var out []string
	for _, r := range g.runs {
		for _, n := range r.Notes {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return strings.Join(out, "; ")
}

// serverOrder puts upgate first, the ceiling (or the TLS or the write
// floor) second, the peers after.
var serverOrder = []string{"upgate", "ceiling", "tlsfloor", "writefloor", "splice", "gnetws", "nbio", "gws", "gobwas", "gorilla"}

func rank(s string) int {
	if i := slices.Index(serverOrder, s); i >= 0 {
		return i
	}
	return len(serverOrder)
}

func loadResults(dirs []string) ([]*group, error) {
	type key struct {
		scenario, server, variant string
		loops                     int
	}
	idx := map[key]*group{}
	var groups []*group
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			r := new(Result)
			if err := json.Unmarshal(b, r); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if r.Scenario == "" {
				continue
			}
			sc := section(r)
			k := key{sc, r.Server, r.Variant, loopsOf(r)}
			g := idx[k]
			if g == nil {
				g = &group{scenario: sc, server: r.Server, variant: r.Variant, loops: k.loops}
				idx[k] = g
				groups = append(groups, g)
			}
			g.runs = append(g.runs, r)
		}
	}
	sort.SliceStable(groups, func(i, j int) bool {
		a, b := groups[i], groups[j]
		if a.scenario != b.scenario {
			return a.scenario < b.scenario
		}
		if a.loops != b.loops {
			return a.loops < b.loops
		}
		if rank(a.server) != rank(b.server) {
			return rank(a.server) < rank(b.server)
		}
		if a.server != b.server {
			return a.server < b.server
		}
		if (a.variant == "default") != (b.variant == "default") {
			return a.variant == "default"
		}
		return a.variant < b.variant
	})
	return groups, nil
}

func pick(groups []*group, scenario string, levers bool) []*group {
	var out []*group
	for _, g := range groups {
		if g.scenario == scenario && (g.variant != "") == levers {
			out = append(out, g)
		}
	}
	return out
}

func find(gs []*group, server string) *group {
	for _, g := range gs {
		if g.server == server {
			return g
		}
	}
	return nil
}

// ratio formats a/b, or "–" when b is missing.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(b) || math.IsNaN(a) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "–"
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if prec == 0 && v >= 10000 {
		// thin grouping for big numbers: 123 456
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return s
}

func lat(f func(*Latency) float64) func(*Result) float64 {
	return func(r *Result) float64 {
		var l *Latency
		switch {
		case r.HandshakeLatency != nil && (baseScenario(r) == "handshake" || baseScenario(r) == "latency"):
			l = r.HandshakeLatency
		case r.RTT != nil:
			l = r.RTT
		case r.LastSubscriber != nil:
			l = r.LastSubscriber
		}
		if l == nil {
			return math.NaN()
		}
		return f(l)
	}
}

var (
	hsRate   = func(r *Result) float64 { return r.HandshakesPerSec }
	msgRate  = func(r *Result) float64 { return r.MessagesPerSec }
	srvPerOp = func(r *Result) float64 { return r.ServerCPUPerOpUs }
	usrPerOp = func(r *Result) float64 { return r.ServerUserPerOpUs }
	srvUtil  = func(r *Result) float64 { return 100 * r.ServerCPUUtil }
	cliUtil  = func(r *Result) float64 { return 100 * r.ClientCPUUtil }
	othUtil  = func(r *Result) float64 { return 100 * r.OtherCPUUtil }
	p50      = lat(func(l *Latency) float64 { return l.P50 })
	p90      = lat(func(l *Latency) float64 { return l.P90 })
	p99      = lat(func(l *Latency) float64 { return l.P99 })
	p999     = lat(func(l *Latency) float64 { return l.P999 })
	failed   = func(r *Result) float64 { return float64(r.Failed) }
	refused  = func(r *Result) float64 { return float64(r.Refused) }
	perConn  = func(r *Result) float64 { return r.ServerBytesPerConn }
)

type table struct {
	head []string
	rows [][]string
}

func (t *table) markdown(b *strings.Builder) {
	b.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for range t.head {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	b.WriteString("\n")
}

func handshakeTable(gs []*group) *table { return handshakeTableVs(gs, "ceiling") }

// handshakeTableVs is the handshake table with a column comparing every
// server with floor.
func handshakeTableVs(gs []*group, floor string) *table {
	t := &table{head: []string{"server", "handshakes/s", "vs upgate", "vs " + floor, "p50 µs", "p90 µs", "p99 µs", "p99.9 µs",
		"server CPU µs/handshake", "of which user µs", "server CPU %", "client CPU %", "other CPU %", "failed", "refused", "runs", "notes"}}
	up, ceil := find(gs, "upgate"), find(gs, floor)
	ref := func(g *group) float64 {
		if g == nil {
			return math.NaN()
		}
		return g.med(hsRate)
	}
	for _, g := range gs {
		v := g.med(hsRate)
		t.rows = append(t.rows, []string{g.server, num(v, 0), ratio(v, ref(up)), ratio(v, ref(ceil)),
			num(g.med(p50), 0), num(g.med(p90), 0), num(g.med(p99), 0), num(g.med(p999), 0),
			num(g.med(srvPerOp), 2), num(g.med(usrPerOp), 2), num(g.med(srvUtil), 0), num(g.med(cliUtil), 0), num(g.med(othUtil), 0),
			num(g.med(failed), 0), num(g.med(refused), 0), strconv.Itoa(len(g.runs)), g.notes()})
	}
	return t
}

func leverTable(levers []*group) *table {
	t := &table{head: []string{"server", "options", "handshakes/s", "vs default", "p50 µs", "p99 µs", "p99.9 µs",
		"server CPU µs/handshake", "of which user µs", "server CPU %", "client CPU %", "other CPU %", "failed", "refused", "runs"}}
	for _, g := range levers {
		d := math.NaN()
		for _, b := range levers {
			if b.server == g.server && b.variant == "default" && g.variant != "default" {
				d = b.med(hsRate)
			}
		}
		v := g.med(hsRate)
		t.rows = append(t.rows, []string{g.server, g.variant, num(v, 0), ratio(v, d),
			num(g.med(p50), 0), num(g.med(p99), 0), num(g.med(p999), 0),
			num(g.med(srvPerOp), 2), num(g.med(usrPerOp), 2), num(g.med(srvUtil), 0), num(g.med(cliUtil), 0), num(g.med(othUtil), 0),
			num(g.med(failed), 0), num(g.med(refused), 0), strconv.Itoa(len(g.runs))})
	}
	return t
}

func latencyTable(gs []*group) *table {
	t := &table{head: []string{"server", "target/s", "achieved/s", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs",
		"server CPU µs/handshake", "server CPU %", "client CPU %", "other CPU %", "failed", "refused", "runs", "notes"}}
	for _, g := range gs {
		t.rows = append(t.rows, []string{g.server,
			num(g.med(func(r *Result) float64 { return r.Settings.Rate }), 0), num(g.med(hsRate), 0),
			num(g.med(p50), 0), num(g.med(p90), 0), num(g.med(p99), 0), num(g.med(p999), 0),
			num(g.med(lat(func(l *Latency) float64 { return l.Max })), 0),
			num(g.med(srvPerOp), 2), num(g.med(srvUtil), 0), num(g.med(cliUtil), 0), num(g.med(othUtil), 0),
			num(g.med(failed), 0), num(g.med(refused), 0), strconv.Itoa(len(g.runs)), g.notes()})
	}
	return t
}

func holdTable(gs []*group) *table {
	t := &table{head: []string{"server", "connections", "server bytes/conn", "vs upgate", "client bytes/conn",
		"server RSS at N (MiB)", "server CPU % while holding", "lost", "runs"}}
	up := find(gs, "upgate")
	for _, g := range gs {
		v := g.med(perConn)
		u := math.NaN()
		if up != nil {
			u = up.med(perConn)
		}
		t.rows = append(t.rows, []string{g.server, num(g.med(func(r *Result) float64 { return float64(r.Held) }), 0),
			num(v, 0), ratio(v, u), num(g.med(func(r *Result) float64 { return r.ClientBytesPerConn }), 0),
			num(g.med(func(r *Result) float64 { return float64(r.ServerRSSAtN) / (1 << 20) }), 1),
			num(g.med(func(r *Result) float64 { return 100 * r.ServerCPUHolding }), 1),
			num(g.med(func(r *Result) float64 { return float64(r.Lost) }), 0), strconv.Itoa(len(g.runs))})
	}
	return t
}

func echoTable(gs []*group) *table {
	t := &table{head: []string{"server", "messages/s", "vs upgate", "MB/s", "RTT p50 µs", "p99 µs", "p99.9 µs",
		"server CPU µs/message", "server CPU %", "client CPU %", "other CPU %", "errors", "runs", "notes"}}
	up := find(gs, "upgate")
	for _, g := range gs {
		v := g.med(msgRate)
		u := math.NaN()
		if up != nil {
			u = up.med(msgRate)
		}
		t.rows = append(t.rows, []string{g.server, num(v, 0), ratio(v, u),
			num(g.med(func(r *Result) float64 { return r.BytesPerSec / 1e6 }), 1),
			num(g.med(p50), 0), num(g.med(p99), 0), num(g.med(p999), 0),
			num(g.med(srvPerOp), 2), num(g.med(srvUtil), 0), num(g.med(cliUtil), 0), num(g.med(othUtil), 0),
			num(g.med(failed), 0), strconv.Itoa(len(g.runs)), g.notes()})
	}
	return t
}

func broadcastTable(gs []*group) *table {
	t := &table{head: []string{"server", "subscribers", "published/s", "delivered/s", "last subscriber p50 µs", "p99 µs", "p99.9 µs",
		"any delivery p50 µs", "incomplete", "server CPU µs/delivery", "server CPU %", "client CPU %", "other CPU %", "runs", "notes"}}
	for _, g := range gs {
		t.rows = append(t.rows, []string{g.server,
			num(g.med(func(r *Result) float64 { return float64(r.Settings.Conns) }), 0),
			num(g.med(func(r *Result) float64 { return r.Settings.Rate }), 1),
			num(g.med(func(r *Result) float64 { return r.DeliveredPerSec }), 0),
			num(g.med(p50), 0), num(g.med(p99), 0), num(g.med(p999), 0),
			num(g.med(func(r *Result) float64 {
				if r.AnyDelivery == nil {
					return math.NaN()
				}
				return r.AnyDelivery.P50
			}), 0),
			num(g.med(func(r *Result) float64 { return float64(r.Incomplete) }), 0),
			num(g.med(srvPerOp), 2), num(g.med(srvUtil), 0), num(g.med(cliUtil), 0), num(g.med(othUtil), 0), strconv.Itoa(len(g.runs)), g.notes()})
	}
	return t
}

func settingsLine(gs []*group) string {
	if len(gs) == 0 {
		return ""
	}
	r := gs[0].runs[0]
	s := r.Settings
	var parts []string
	add := func(cond bool, f string, a ...any) {
		if cond {
			parts = append(parts, fmt.Sprintf(f, a...))
		}
	}
	switch baseScenario(r) {
	case "handshake":
		add(true, "%d handshakes in flight, warm-up %gs, measured %gs", s.Concurrency, s.Warmup, s.Duration)
		add(s.CloseMode != "", "client closes with %s", map[string]string{"rst": "RST (SO_LINGER 0)", "fin": "FIN"}[s.CloseMode])
	case "latency":
		add(true, "%.0f handshakes started per second on a fixed schedule (at most %d in flight), each timed from its scheduled start; warm-up %gs, measured %gs",
			s.Rate, s.Concurrency, s.Warmup, s.Duration)
		add(s.CloseMode != "", "client closes with %s", map[string]string{"rst": "RST (SO_LINGER 0)", "fin": "FIN"}[s.CloseMode])
	case "hold":
		add(true, "%d connections opened %d at a time, memory read at %d and at %d connections, then held %gs",
			s.Conns, s.Concurrency, r.HoldFrom, s.Conns, s.Duration)
		if r.Deflate != nil {
			add(true, "before the readings every connection echoed one message: %s", deflateSettings(r.Deflate))
		}
	case "echo":
		if r.Deflate != nil {
			add(true, "%d connections, one message in flight on each, warm-up %gs, measured %gs; %s",
				s.Conns, s.Warmup, s.Duration, deflateSettings(r.Deflate))
			break
		}
		add(true, "%d connections, one %d-byte binary message in flight on each, warm-up %gs, measured %gs",
			s.Conns, s.Size, s.Warmup, s.Duration)
	case "broadcast":
		if r.Deflate != nil {
			add(true, "%d subscribers on %s, %.0f messages published per second by %s, measured %gs; %s",
				s.Conns, s.Path, s.Rate, publishers(gs), s.Duration, deflateBroadcastSettings(r.Deflate))
			break
		}
		add(true, "%d subscribers on %s, %.0f messages of %d bytes published per second by %s, measured %gs",
			s.Conns, s.Path, s.Rate, s.Size, publishers(gs), s.Duration)
	}
	if r.TLS != nil {
		add(true, "%s", tlsSettings(r.TLS))
	}
	add(true, "source addresses spread over %d loopback IPs", s.Sources)
	if r.Scenario != "broadcast" {
		add(true, "path %s", s.Path)
	}
	return strings.Join(parts, "; ")
}

func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	out := fs.String("o", "", "output directory (default: the parent of the first RAWDIR)")
	title := fs.String("title", "upgate benchmark", "title of the Markdown report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("usage: upgate-bench report [-o DIR] RAWDIR")
	}
	dirs := fs.Args()
	if *out == "" {
		*out = filepath.Dir(filepath.Clean(dirs[0]))
	}
	groups, err := loadResults(dirs)
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		return fmt.Errorf("no results in %v", dirs)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", *title)
	if env, err := os.ReadFile(filepath.Join(*out, "env.txt")); err == nil {
		b.WriteString("```\n" + strings.TrimSpace(string(env)) + "\n```\n\n")
	}
	b.WriteString("Medians over the runs of each row. Server pinned to CPU 0 (GOMAXPROCS=1), client to CPU 1. " +
		"CPU % is of one core; \"client-bound\" marks runs whose client used more than 90 % of its core: " +
		"there the server's CPU time per operation compares servers, not the rate.\n\n")
	var others []float64
	for _, g := range groups {
		for _, r := range g.runs {
			others = append(others, 100*r.OtherCPUUtil)
		}
	}
	sort.Float64s(others)
	fmt.Fprintf(&b, "Interference: besides the server and the client, the machine was busy for %.0f %% of a core in the median run "+
		"(min %.0f %%, max %.0f %%; interrupt time charged to no process included). "+
		"The \"other CPU %%\" column gives it per row.\n\n",
		others[len(others)/2], others[0], others[len(others)-1])
	sections := []struct {
		scenario, title string
		mk              func([]*group) *table
		chart           func([]*group, string, string) error
	}{
		{"handshake", "Handshakes", handshakeTable, chartHandshakes},
		{"latency", "Handshake latency at a fixed rate", latencyTable, chartLatency},
		{"hold", "Memory per idle connection", holdTable, nil},
		{"echo", "Echo", echoTable, chartEcho},
		{"broadcast", "Broadcast", floorBroadcastTable, nil},
		{"tls-handshake-x25519", "TLS handshakes, X25519 key share", tlsHandshakeTable, chartHandshakes},
		{"tls-handshake-default", "TLS handshakes, Go's default key shares (X25519MLKEM768 and X25519)", tlsHandshakeTable, chartHandshakes},
		{"tls-hold-x25519", "Memory per idle TLS connection, X25519 key share", tlsHoldTable, nil},
		{"tls-hold-default", "Memory per idle TLS connection, Go's default key shares", tlsHoldTable, nil},
		{"tls-echo-default", "TLS echo", tlsEchoTable, chartEcho},
		{"tls-echo-x25519", "TLS echo, X25519 key share", tlsEchoTable, chartEcho},
		{"deflate-echo-none", "Echo of JSON messages without permessage-deflate (baseline)",
			func(gs []*group) *table { return deflateTable(gs, nil) }, chartDeflateEcho},
		{"deflate-echo-no-takeover", "Echo with permessage-deflate, no context takeover",
			func(gs []*group) *table { return deflateTable(gs, pick(groups, "deflate-echo-none", false)) }, chartDeflateEcho},
		{"deflate-echo-takeover", "Echo with permessage-deflate, server context takeover allowed",
			func(gs []*group) *table { return deflateTable(gs, pick(groups, "deflate-echo-none", false)) }, chartDeflateEcho},
		{"deflate-hold-none", "Memory per connection after one JSON echo, without permessage-deflate (baseline)",
			func(gs []*group) *table { return deflateHoldTable(gs, nil) }, chartDeflateHold},
		{"deflate-hold-no-takeover", "Memory per connection with permessage-deflate, after one compressed echo",
			func(gs []*group) *table { return deflateHoldTable(gs, pick(groups, "deflate-hold-none", false)) }, chartDeflateHold},
		{"deflate-hold-takeover", "Memory per connection with permessage-deflate, context takeover allowed, after one compressed echo",
			func(gs []*group) *table { return deflateHoldTable(gs, pick(groups, "deflate-hold-none", false)) }, chartDeflateHold},
		{"deflate-broadcast-none", "Broadcast of JSON messages without permessage-deflate (baseline)",
			func(gs []*group) *table { return deflateBroadcastTable(gs, nil) }, chartDeflateBcast},
		{"deflate-broadcast-no-takeover", "Broadcast of JSON messages with permessage-deflate",
			func(gs []*group) *table {
				return deflateBroadcastTable(gs, pick(groups, "deflate-broadcast-none", false))
			}, chartDeflateBcast},
	}
	var csvRows [][]string
	for _, s := range sections {
		gs := pick(groups, s.scenario, false)
		if len(gs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "## %s\n\n%s.\n\n", s.title, settingsLine(gs))
		t := s.mk(gs)
		t.markdown(&b)
		csvRows = appendCSV(csvRows, s.scenario, "", t)
		if s.chart != nil {
			if err := s.chart(gs, *out, s.scenario); err != nil {
				return err
			}
			fmt.Fprintf(&b, "![%s](%s.png)\n\n", s.title, s.scenario)
			switch baseScenario(gs[0].runs[0]) {
			case "handshake":
				fmt.Fprintf(&b, "![server CPU per handshake](%s-cpu.png)\n\n", s.scenario)
				fmt.Fprintf(&b, "![handshake latency](%s-latency.png)\n\n", s.scenario)
			case "echo":
				fmt.Fprintf(&b, "![echo latency](%s-latency.png)\n\n", s.scenario)
			}
		}
	}
	for _, d := range tunnelDirs {
		gs := pick(groups, d.section, false)
		if len(gs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "## %s\n\n%s.\n\n", d.title, tunnelSettings(gs))
		t := tunnelTable(gs)
		t.markdown(&b)
		csvRows = appendCSV(csvRows, d.section, "", t)
	}
	if lv := pick(groups, "handshake", true); len(lv) > 0 {
		fmt.Fprintf(&b, "## Kernel levers\n\n%s, unless the options say otherwise.\n\n", settingsLine(lv))
		t := leverTable(lv)
		t.markdown(&b)
		csvRows = appendCSV(csvRows, "handshake-levers", "", t)
	}
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(*out, "results.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.WriteAll(csvRows)
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Println(b.String())
	return nil
}

// appendCSV appends a table to the CSV rows, with the scenario as first
// column and the table's head repeated before its rows.
func appendCSV(rows [][]string, scenario, _ string, t *table) [][]string {
	rows = append(rows, append([]string{"scenario"}, t.head...))
	for _, r := range t.rows {
		rows = append(rows, append([]string{scenario}, r...))
	}
	return rows
}
