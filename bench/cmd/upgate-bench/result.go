package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

// Latency is a latency distribution in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p99_9_us"`
	Max   float64 `json:"max_us"`
	// CDF holds [percentile, microseconds] points for charts.
	CDF [][2]float64 `json:"cdf,omitempty"`
}

// cdfPoints are the percentiles kept for charts: evenly spaced on the
// "number of nines" scale (0 %, 20.6 %, ..., 90 %, ..., 99.99 %), then 100.
var cdfPoints = func() []float64 {
	var ps []float64
	for i := 0; i <= 40; i++ {
		ps = append(ps, 100*(1-math.Pow(10, -float64(i)/10)))
	}
	return append(ps, 100)
}()

func summarize(h *hdrhistogram.Histogram, cdf bool) *Latency {
	if h.TotalCount() == 0 {
		return nil
	}
	us := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1e3 }
	l := &Latency{
		Count: h.TotalCount(), Mean: h.Mean() / 1e3,
		P50: us(50), P90: us(90), P99: us(99), P999: us(99.9), Max: float64(h.Max()) / 1e3,
	}
	if cdf {
		for _, q := range cdfPoints {
			l.CDF = append(l.CDF, [2]float64{q, us(q)})
		}
	}
	return l
}

// Result is the machine-readable outcome of one run.
type Result struct {
	Scenario string    `json:"scenario"`
	Server   string    `json:"server"`
	Variant  string    `json:"variant,omitempty"`
	Rep      int       `json:"rep"`
	Start    time.Time `json:"start"`
	Seconds  float64   `json:"seconds"`
	Settings Settings  `json:"settings"`
	Notes    []string  `json:"notes,omitempty"`
	// TLS describes a wss:// run (-tls): key shares offered, what the
	// server negotiated.
	TLS *TLSInfo `json:"tls,omitempty"`
	// Deflate describes a -deflate echo: the offer, what the server
	// negotiated, bytes on the wire per message.
	Deflate *DeflateInfo `json:"deflate,omitempty"`
	// Tunnel holds the tunnel scenario's throughput and CPU per MiB.
	Tunnel *TunnelInfo `json:"tunnel,omitempty"`
	// LoadAvg is the 1-minute load average when the run started: other
	// work on the machine shows up here.
	LoadAvg float64 `json:"loadavg_1m"`

	Handshakes       int64            `json:"handshakes"`
	HandshakesPerSec float64          `json:"handshakes_per_sec"`
	Failed           int64            `json:"failed"`
	Refused          int64            `json:"refused"`
	Errors           map[string]int64 `json:"errors,omitempty"`
	HandshakeLatency *Latency         `json:"handshake_latency,omitempty"`
	Timeline         []int64          `json:"timeline,omitempty"` // handshakes per second

	Messages       int64    `json:"messages,omitempty"`
	MessagesPerSec float64  `json:"messages_per_sec,omitempty"`
	BytesPerSec    float64  `json:"bytes_per_sec,omitempty"`
	RTT            *Latency `json:"rtt,omitempty"`

	Published       int64    `json:"published,omitempty"`
	Delivered       int64    `json:"delivered,omitempty"`
	DeliveredPerSec float64  `json:"delivered_per_sec,omitempty"`
	Incomplete      int64    `json:"incomplete,omitempty"` // messages some subscriber never got
	LastSubscriber  *Latency `json:"last_subscriber_latency,omitempty"`
	AnyDelivery     *Latency `json:"delivery_latency,omitempty"`

	Held               int     `json:"held,omitempty"`
	HoldFrom           int     `json:"hold_from,omitempty"`
	ServerRSSBase      int64   `json:"server_rss_base,omitempty"`
	ServerRSSFrom      int64   `json:"server_rss_from,omitempty"`
	ServerRSSAtN       int64   `json:"server_rss_at_n,omitempty"`
	ServerBytesPerConn float64 `json:"server_bytes_per_conn,omitempty"`
	ClientBytesPerConn float64 `json:"client_bytes_per_conn,omitempty"`
	Lost               int64   `json:"lost,omitempty"`
	// ServerCPUHolding is the server's CPU use (of one core) while it only
	// holds the idle connections: timers and housekeeping.
	ServerCPUHolding float64 `json:"server_cpu_holding"`

	ServerPID        int     `json:"server_pid,omitempty"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	// ServerUserSeconds is the user-space part of ServerCPUSeconds.
	ServerUserSeconds float64 `json:"server_user_seconds,omitempty"`
	ServerCPUUtil     float64 `json:"server_cpu_util"` // of one core
	ServerCPUPerOpUs  float64 `json:"server_cpu_per_op_us,omitempty"`
	// ServerUserPerOpUs is the user-space part of ServerCPUPerOpUs; the
	// rest is the kernel's (system time).
	ServerUserPerOpUs float64 `json:"server_user_per_op_us,omitempty"`
	ClientCPUSeconds  float64 `json:"client_cpu_seconds"`
	ClientCPUUtil     float64 `json:"client_cpu_util"`
	ClientBound       bool    `json:"client_bound"`
	// OtherCPUUtil is the CPU the rest of the machine used during the run
	// (all cores busy, minus the server and the client), in cores:
	// interference, plus interrupt time charged to no process.
	OtherCPUUtil       float64 `json:"other_cpu_util"`
	AcceptVerified     bool    `json:"accept_verified"`
	ServerRSSAfterRun  int64   `json:"server_rss_after_run,omitempty"`
	ServerThreadsAtEnd int     `json:"server_threads_at_end,omitempty"`
}

// Settings are the knobs a run used: identical for every server.
type Settings struct {
	Concurrency int     `json:"concurrency,omitempty"`
	Conns       int     `json:"conns,omitempty"`
	Size        int     `json:"size,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Warmup      float64 `json:"warmup_seconds"`
	Duration    float64 `json:"duration_seconds"`
	CloseMode   string  `json:"close_mode,omitempty"`
	Sources     int     `json:"sources"`
	Path        string  `json:"path,omitempty"`
	Publish     string  `json:"publish,omitempty"`
	// Direction and Setups are the tunnel scenario's (-dir, -setups).
	Direction string `json:"direction,omitempty"`
	Setups    int    `json:"setups,omitempty"`
	// ServerLoops is the server's event loops (writers for writefloor) as
	// the script started it (-server-loops); 0 when not recorded: one.
	ServerLoops int `json:"server_loops,omitempty"`
}

// cpuMeter measures the CPU time of the server and of the client itself
// over a run.
type cpuMeter struct {
	pid            int
	wall           time.Time
	server, client time.Duration
	serverUser     time.Duration
	busy           time.Duration
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, wall: time.Now(), client: selfCPU(), busy: machineBusy()}
	m.serverUser, m.server, _ = loadgen.ProcTimes(pid)
	return m
}

// machineBusy returns the CPU time all cores spent on anything but idle and
// I/O wait, from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / loadgen.ClkTck
}

// stop fills the CPU fields of r; ops is the number of operations (for CPU
// time per operation), 0 for none.
func (m *cpuMeter) stop(r *Result, ops int64) {
	wall := time.Since(m.wall).Seconds()
	client := (selfCPU() - m.client).Seconds()
	r.ClientCPUSeconds, r.ClientCPUUtil = client, client/wall
	busy := (machineBusy() - m.busy).Seconds()
	r.ClientBound = r.ClientCPUUtil > 0.9
	if r.ClientBound {
		r.Notes = append(r.Notes, "client-bound")
	}
	if m.pid <= 0 {
		return
	}
	r.ServerPID = m.pid
	if u, s, err := loadgen.ProcTimes(m.pid); err == nil {
		srv := (s - m.server).Seconds()
		r.ServerCPUSeconds, r.ServerCPUUtil = srv, srv/wall
		r.ServerUserSeconds = (u - m.serverUser).Seconds()
		r.OtherCPUUtil = max(busy-srv-client, 0) / wall
		if ops > 0 {
			r.ServerCPUPerOpUs = srv * 1e6 / float64(ops)
			r.ServerUserPerOpUs = (u - m.serverUser).Seconds() * 1e6 / float64(ops)
		}
	}
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func selfCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// write saves r as indented JSON (to stdout for "-").
func (r *Result) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "" || path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// summary is the one line printed after a run.
func (r *Result) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %-8s", r.Scenario, r.Server)
	if r.Variant != "" {
		fmt.Fprintf(&b, " [%s]", r.Variant)
	}
	if r.Settings.ServerLoops > 1 {
		fmt.Fprintf(&b, " [%d loops]", r.Settings.ServerLoops)
	}
	if r.TLS != nil {
		fmt.Fprintf(&b, " [%s: %s]", r.TLS.KeyShares, r.TLS.negotiated())
	}
	if d := r.Deflate; d != nil {
		fmt.Fprintf(&b, " [%s: %s] wire %.0f+%.0f B/msg", d.Mode, d.negotiated(), d.SentWireBytes, d.RecvWireBytes)
	}
	switch baseScenario(r) {
	case "handshake", "latency":
		fmt.Fprintf(&b, " %9.0f hs/s", r.HandshakesPerSec)
		if l := r.HandshakeLatency; l != nil {
			fmt.Fprintf(&b, "  p50 %6.0fµs p99 %6.0fµs p99.9 %6.0fµs", l.P50, l.P99, l.P999)
		}
		fmt.Fprintf(&b, "  srv %.2fµs/hs", r.ServerCPUPerOpUs)
	case "hold":
		fmt.Fprintf(&b, " %d conns  server %.0f B/conn  client %.0f B/conn", r.Held, r.ServerBytesPerConn, r.ClientBytesPerConn)
	case "echo":
		fmt.Fprintf(&b, " %9.0f msg/s", r.MessagesPerSec)
		if l := r.RTT; l != nil {
			fmt.Fprintf(&b, "  p50 %6.0fµs p99 %6.0fµs", l.P50, l.P99)
		}
	case "tunnel":
		if t := r.Tunnel; t != nil {
			fmt.Fprintf(&b, " %-4s %4d tunnels %8.1f MiB/s  srv %.0fµs/MiB", t.Direction, r.Settings.Conns, t.MiBPerSec, t.ServerCPUPerMiBUs)
		}
		if l := r.HandshakeLatency; l != nil {
			fmt.Fprintf(&b, "  setup p50 %4.0fµs p99 %5.0fµs", l.P50, l.P99)
		}
	case "broadcast":
		fmt.Fprintf(&b, " %9.0f deliveries/s", r.DeliveredPerSec)
		if l := r.LastSubscriber; l != nil {
			fmt.Fprintf(&b, "  last-subscriber p50 %6.0fµs p99 %6.0fµs", l.P50, l.P99)
		}
	}
	fmt.Fprintf(&b, "  cpu srv %3.0f%% cli %3.0f%%", 100*r.ServerCPUUtil, 100*r.ClientCPUUtil)
	if r.Failed+r.Refused > 0 {
		fmt.Fprintf(&b, "  failed %d refused %d", r.Failed, r.Refused)
	}
	for _, n := range r.Notes {
		b.WriteString("  (" + n + ")")
	}
	return b.String()
}
