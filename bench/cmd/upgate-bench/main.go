// Command upgate-bench is upgate's load generator: one event-driven client
// (epoll, no goroutine per connection) that drives any WebSocket server the
// same way, and the reporter that turns its results into tables and charts.
//
//	upgate-bench [flags] handshake|latency|hold|echo|broadcast|tunnel
//	upgate-bench -tls -tls-ca FILE [flags] handshake|hold|echo
//	upgate-bench report DIR
//	upgate-bench cert [-o DIR]
//
// A run prints one summary line and, with -out, writes its result as JSON.
// It exits with status 3 when a -deflate server declined the extension (the
// result, recording it, is written all the same), 1 on other errors.
// Pin the client and the server to different cores (scripts/bench.sh does).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"
)

type config struct {
	scenario     string
	server       string
	variant      string
	addr         string
	addr2        string // broadcast: a second node for half the subscribers
	serverPID    int
	duration     time.Duration
	warmup       time.Duration
	concurrency  int
	conns        int
	holdFrom     int
	settle       time.Duration
	size         int
	rate         float64
	path         string
	pubPath      string
	publishURL   string
	sources      int
	verifyAccept bool
	closeMode    string
	hsTimeout    time.Duration
	out          string
	rep          int
	notes        string
	progress     bool
	cpuProfile   string
	tls          bool
	tlsCA        string
	tlsInsecure  bool
	tlsCurves    string
	deflate      string
	serverLoops  int
	upstream     string // tunnel: the upstream this process serves
	dir          string // tunnel: up, down or both
	setups       int    // tunnel: tunnels opened one at a time for the setup latency
	verifyStream bool   // tunnel: check every byte received
}

func newResult(cfg *config) *Result {
	r := &Result{
		Scenario: cfg.scenario, Server: cfg.server, Variant: cfg.variant, Rep: cfg.rep,
		Start: time.Now().UTC(), AcceptVerified: cfg.verifyAccept, LoadAvg: loadAvg(),
		Settings: Settings{
			Concurrency: cfg.concurrency, Size: cfg.size, Sources: cfg.sources,
			Warmup: cfg.warmup.Seconds(), Duration: cfg.duration.Seconds(), Path: cfg.path,
		},
	}
	switch cfg.scenario {
	case "handshake", "latency":
		r.Settings.CloseMode = cfg.closeMode
		r.Settings.Size = 0
		r.Settings.Rate = cfg.rate
	case "hold":
		r.Settings.Conns = cfg.conns
		r.Settings.Size = 0
	case "echo":
		r.Settings.Conns = cfg.conns
	case "tunnel":
		r.Settings.Conns = cfg.conns
		r.Settings.Direction, r.Settings.Setups = cfg.dir, cfg.setups
	case "broadcast":
		r.Settings.Conns, r.Settings.Rate = cfg.conns, cfg.rate
		r.Settings.Publish = cfg.pubPath
		if cfg.publishURL != "" {
			r.Settings.Publish = cfg.publishURL
		}
	}
	r.Settings.ServerLoops = cfg.serverLoops
	if !cfg.verifyAccept {
		r.Notes = append(r.Notes, "status only: Sec-WebSocket-Accept not verified")
	}
	if cfg.notes != "" {
		r.Notes = append(r.Notes, strings.Split(cfg.notes, ";")...)
	}
	return r
}

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  upgate-bench [flags] handshake|latency|hold|echo|broadcast|tunnel
  upgate-bench -tls (-tls-ca FILE | -tls-insecure) [flags] handshake|hold|echo
  upgate-bench report [-o DIR] RAWDIR...
  upgate-bench cert [-o DIR]   write cert.pem and key.pem: a self-signed
                               ECDSA P-256 certificate for 127.0.0.1

scenarios:
  handshake  connect, upgrade, verify Sec-WebSocket-Accept, close (RST); as
             fast as -c in flight allow, for -d
  latency    the same handshakes started at a fixed -rate, each timed from
             its scheduled start (no coordinated omission)
  hold       open -n connections and keep them: server memory per connection
             as the RSS slope between -hold-from and -n connections
  echo       -n connections each echoing -size byte messages, one in flight
  broadcast  -n subscribers on -path; messages published at -rate over a
             WebSocket (-pub-path) or the admin API (-publish-url)
  tunnel     -setups tunnels opened one at a time (setup latency), then -n
             tunnels ("Upgrade: tcp" on -path, default /tunnel) pushing
             -size byte writes one way (-dir) for -d, through the server
             to the upstream this process serves on -upstream: MiB/s and
             the server's CPU time per MiB

With -tls, handshake, hold and echo speak wss://: TLS 1.3 only, full
handshakes (no session cache), one goroutine per handshake in flight
(crypto/tls); echo then runs its connections on the epoll engine, as
over ws://. Results are recorded as tls-handshake, tls-hold and tls-echo.

With -deflate MODE, echo sends 16 JSON messages of about 2 KiB, cycled, as
text: compressed at level 1 with RSV1 (no-takeover, takeover), the echoes
inflated and checked byte by byte, the frame bytes counted both ways. A 101
without permessage-deflate ends the run (declined). Results are recorded as
deflate-echo, with the offer and the negotiated extension. hold -deflate
MODE has every connection echo one such message (checked) before the
memory readings (deflate-hold); broadcast -deflate MODE publishes them,
prefixed with the 32-digit stamp, to subscribers that offer the extension
and inflate and check every delivery (deflate-broadcast).

flags:
`)
	flag.PrintDefaults()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "report" {
		if err := report(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "upgate-bench report:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "cert" {
		if err := certCmd(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "upgate-bench cert:", err)
			os.Exit(1)
		}
		return
	}
	cfg := &config{}
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:9000", "server address (IPv4 ip:port)")
	flag.StringVar(&cfg.addr2, "addr2", "", "broadcast: a second node of the same fleet (IPv4 ip:port); half the\nsubscribers connect there, the publisher stays on -addr")
	flag.StringVar(&cfg.server, "server", "server", "server name recorded in the result")
	flag.StringVar(&cfg.variant, "variant", "", "variant recorded in the result (server options)")
	flag.IntVar(&cfg.serverPID, "server-pid", 0, "server process id, for its CPU time and memory")
	flag.IntVar(&cfg.serverLoops, "server-loops", 0, "the server's event loops (writers for writefloor), recorded in the result:\nthe report's broadcast rows are by loop count (0: not recorded, one)")
	flag.DurationVar(&cfg.duration, "d", 10*time.Second, "measured duration (hold: how long to hold)")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "warm-up before measuring")
	flag.IntVar(&cfg.concurrency, "c", 64, "handshakes in flight")
	flag.IntVar(&cfg.conns, "n", 0, "connections (hold: 19000, echo: 100, broadcast: 10000)")
	flag.IntVar(&cfg.holdFrom, "hold-from", 1000, "hold: smaller size of the memory slope")
	flag.DurationVar(&cfg.settle, "settle", time.Second, "hold: pause before each memory reading")
	flag.IntVar(&cfg.size, "size", 0, "message size in bytes (echo: 64, broadcast: 32)")
	flag.Float64Var(&cfg.rate, "rate", 0, "latency: handshakes started per second (default 10000);\nbroadcast: messages published per second (default 10)")
	flag.StringVar(&cfg.path, "path", "", "request path (default /echo; broadcast /ws/bench)")
	flag.StringVar(&cfg.pubPath, "pub-path", "/pub/bench", "broadcast: WebSocket publisher path")
	flag.StringVar(&cfg.publishURL, "publish-url", "", "broadcast: publish with POST to this URL instead")
	flag.IntVar(&cfg.sources, "sources", 64, "loopback source addresses (127.0.0.2 on)")
	flag.BoolVar(&cfg.verifyAccept, "verify-accept", true, "verify Sec-WebSocket-Accept (false: status only)")
	flag.StringVar(&cfg.closeMode, "close", "rst", "how the client closes: rst (SO_LINGER 0) or fin")
	flag.DurationVar(&cfg.hsTimeout, "timeout", 5*time.Second, "handshake timeout")
	flag.StringVar(&cfg.out, "out", "", "write the result as JSON to this file")
	flag.IntVar(&cfg.rep, "rep", 1, "repetition number recorded in the result")
	flag.StringVar(&cfg.notes, "notes", "", "notes recorded in the result, separated by ';'")
	flag.BoolVar(&cfg.progress, "progress", true, "progress bars (only on a terminal)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write the client's CPU profile to this file")
	flag.BoolVar(&cfg.tls, "tls", false, "speak wss:// (handshake, hold, echo): TLS 1.3, full handshakes")
	flag.StringVar(&cfg.tlsCA, "tls-ca", "", "TLS: trust the certificates in this PEM file")
	flag.BoolVar(&cfg.tlsInsecure, "tls-insecure", false, "TLS: do not verify the server's certificate")
	flag.StringVar(&cfg.tlsCurves, "tls-curves", "default", "TLS key shares: x25519 (X25519 only) or default\n(Go's: X25519MLKEM768 and X25519, as current browsers send)")
	flag.StringVar(&cfg.deflate, "deflate", "", "echo, hold, broadcast: 16 JSON messages of about 2 KiB, cycled, with\npermessage-deflate: no-takeover (offer no context takeover both ways), takeover (let the\nserver keep its context) or none (the same messages, no offer: the baseline)")
	flag.StringVar(&cfg.upstream, "upstream", "127.0.0.1:9011", "tunnel: serve the upstream (sink and source) on this address, which\nthe server must connect its tunnels to")
	flag.StringVar(&cfg.dir, "dir", dirUp, "tunnel: up (client to upstream sink), down (upstream source to client)\nor both")
	flag.IntVar(&cfg.setups, "setups", 200, "tunnel: tunnels opened and closed one at a time first, for the setup latency")
	flag.BoolVar(&cfg.verifyStream, "verify-stream", true, "tunnel: check every byte received against the stream sent\n(false: the sink discards in the kernel, MSG_TRUNC)")
	flag.Usage = usage
	flag.Parse()
	if flag.NArg() > 0 {
		// flags may follow the scenario too
		cfg.scenario = flag.Arg(0)
		_ = flag.CommandLine.Parse(flag.Args()[1:])
	}
	if cfg.scenario == "" || flag.NArg() != 0 {
		usage()
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "upgate-bench %s %s: %v\n", cfg.scenario, cfg.server, err)
		if errors.Is(err, errDeclined) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

func run(cfg *config) error {
	if cfg.closeMode != "rst" && cfg.closeMode != "fin" {
		return fmt.Errorf("-close must be rst or fin")
	}
	if cfg.path == "" {
		cfg.path = "/echo"
		switch cfg.scenario {
		case "broadcast":
			cfg.path = "/ws/bench"
		case "tunnel":
			cfg.path = "/tunnel"
		}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	var runner func(*config, *progress) (*Result, error)
	switch cfg.scenario {
	case "handshake":
		cfg.rate = 0
		runner = runHandshake
	case "latency":
		if cfg.rate <= 0 {
			cfg.rate = 10000
		}
		runner = runHandshake
	case "hold":
		def(&cfg.conns, 19000)
		runner = runHold
	case "echo":
		def(&cfg.conns, 100)
		def(&cfg.size, 64)
		runner = runEcho
	case "tunnel":
		def(&cfg.conns, 16)
		def(&cfg.size, 64<<10)
		if cfg.dir != dirUp && cfg.dir != dirDown && cfg.dir != dirBoth {
			return fmt.Errorf("-dir must be up, down or both")
		}
		if cfg.size > 1<<20 {
			return fmt.Errorf("-size must be at most 1 MiB for tunnel")
		}
		if cfg.setups < 0 {
			return fmt.Errorf("-setups must not be negative")
		}
		runner = runTunnel
	case "broadcast":
		def(&cfg.conns, 10000)
		def(&cfg.size, 32)
		if cfg.size < 32 {
			cfg.size = 32
		}
		if cfg.rate <= 0 {
			cfg.rate = 10
		}
		runner = runBroadcast
	default:
		return fmt.Errorf("unknown scenario %q", cfg.scenario)
	}
	if cfg.tls {
		switch cfg.scenario {
		case "handshake":
			runner = runTLSHandshake
		case "hold":
			runner = runTLSHold
		case "echo":
			runner = runTLSEcho
		default:
			return fmt.Errorf("-tls runs handshake, hold and echo, not %s", cfg.scenario)
		}
		if _, _, err := tlsConfig(cfg); err != nil {
			return err
		}
	}
	if cfg.deflate != "" {
		if (cfg.scenario != "echo" && cfg.scenario != "hold" && cfg.scenario != "broadcast") || cfg.tls {
			return fmt.Errorf("-deflate runs echo, hold and broadcast over ws://, not %s", cfg.scenario)
		}
		if _, ok := deflateOffers[cfg.deflate]; !ok {
			return fmt.Errorf("-deflate must be none, no-takeover or takeover")
		}
	}
	if cfg.serverLoops < 0 {
		return fmt.Errorf("-server-loops must not be negative")
	}
	if cfg.sources < 1 || cfg.sources > 60000 {
		return fmt.Errorf("-sources must be in 1..60000")
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	pr := newProgress(cfg.progress)
	r, err := runner(cfg, pr)
	if r != nil {
		fmt.Println(r.summary())
		if cfg.out != "" {
			if werr := r.write(cfg.out); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}
