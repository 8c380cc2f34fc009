package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

type fdConfig struct {
	n              int
	echoConns      int
	echoEvery      time.Duration
	attemptTimeout time.Duration
	before, after  time.Duration
	probes         int
	log            string
	maxLog         int
	fdLimit        int
}

func fdFlags(fs *flag.FlagSet, cm *common) func() (*report, error) {
	cfg := &fdConfig{}
	fs.IntVar(&cfg.n, "n", 3000, "connections opened, more than the server's open-file limit allows")
	fs.IntVar(&cfg.echoConns, "echo", 4, "echo connections opened first, that must keep working")
	fs.DurationVar(&cfg.echoEvery, "echo-every", 20*time.Millisecond, "each echo connection's message interval")
	fs.DurationVar(&cfg.attemptTimeout, "attempt-timeout", 15*time.Second, "time each connection has to get an answer, a 101 or a close")
	fs.DurationVar(&cfg.before, "before", 2*time.Second, "echo alone before the flood")
	fs.DurationVar(&cfg.after, "after", 3*time.Second, "echo after every connection got its answer")
	fs.IntVar(&cfg.probes, "probes", 10, "handshakes that must succeed once the flood's connections are closed")
	fs.StringVar(&cfg.log, "log", "", "the server's log file, whose growth is bounded")
	fs.IntVar(&cfg.maxLog, "max-log-lines", 50, "log lines the server may write during the flood")
	fs.IntVar(&cfg.fdLimit, "fd-limit", 0, "the server's open-file limit (for the report)")
	return func() (*report, error) {
		if cfg.n < 1 || cfg.echoConns < 1 || cfg.echoEvery <= 0 {
			return nil, fmt.Errorf("-n, -echo and -echo-every must be positive")
		}
		return runFDLimit(cm, cfg)
	}
}

// fdRun is the fdlimit scenario's state.
type fdRun struct {
	e         *engine
	phase     int // 0 before, 1 flood, 2 after
	echoLost  []string
	echoBad   int64
	rtt       [3]*hdrhistogram.Histogram
	held      int
	resolved  int
	outcomes  counter
	heldLost  counter
	probeOK   int
	probeFail counter
}

func (f *fdRun) opened(c *conn) {
	switch c.role {
	case roleEcho:
		c.out = make([]byte, 64)
	case roleExtra:
		f.held++
		f.resolved++
		f.outcomes.add("101 (held)")
	case roleProbe:
		f.probeOK++
		f.e.drop(c, true)
	}
}

func (f *fdRun) message(c *conn, _ byte, p []byte) {
	if c.role != roleEcho {
		return
	}
	rtt, ok := f.e.echoed(c, p)
	if !ok {
		f.echoBad++
		return
	}
	_ = f.rtt[f.phase].RecordValue(rtt)
}

func (f *fdRun) ended(c *conn, o outcome) {
	switch c.role {
	case roleEcho:
		f.echoLost = append(f.echoLost, fmt.Sprintf("%s at %s", o, time.Now().Format("15:04:05.000")))
	case roleExtra:
		if o.wasOpen {
			f.held--
			f.heldLost.add(o.String())
			return
		}
		f.resolved++
		f.outcomes.add(o.String())
	case roleProbe:
		f.probeFail.add(o.String())
	}
}

func runFDLimit(cm *common, cfg *fdConfig) (*report, error) {
	r := newReport("fdlimit")
	f := &fdRun{rtt: [3]*hdrhistogram.Histogram{newHist(), newHist(), newHist()}}
	e, err := newEngine(cm.sources, f)
	if err != nil {
		return nil, err
	}
	defer e.close()
	f.e = e
	logStart := countLines(cfg.log)
	before, _ := fetchMetrics(cm.admin)
	ring := loadgen.NewKeyRing(1024, cm.addr, "/echo")
	echo := make([]*conn, cfg.echoConns)
	for i := range echo {
		echo[i] = &conn{id: i, role: roleEcho, fd: -1}
		request(echo[i], ring)
		e.dial(echo[i], cm.dst, 5*time.Second)
	}
	if ok, err := pollUntil(e, 5*time.Second, func() bool { return e.open == cfg.echoConns }, nil); err != nil || !ok {
		return nil, fmt.Errorf("the echo clients did not connect (%v; %s)", err, strings.Join(f.echoLost, "; "))
	}
	next := make([]int64, len(echo))
	echoStep := func(now int64) {
		for i, c := range echo {
			if c.state == stOpen && c.sentAt == 0 && now >= next[i] {
				c.seq++
				fillPayload(c.out, c.seq)
				c.sentAt, next[i] = now, now+int64(cfg.echoEvery)
				e.send(c, loadgen.OpBinary, c.out)
			}
		}
	}
	if _, err := pollUntil(e, cfg.before, nil, echoStep); err != nil {
		return nil, err
	}

	// The flood: more connections than the server can have files.
	f.phase = 1
	extras := make([]*conn, cfg.n)
	for i := range extras {
		extras[i] = &conn{id: i, role: roleExtra, fd: -1}
	}
	floodStart := e.now()
	dialed := 0
	all, err := pollUntil(e, cfg.attemptTimeout+30*time.Second, func() bool { return f.resolved == cfg.n }, func(now int64) {
		for dialed < cfg.n && e.conning < cm.conc {
			request(extras[dialed], ring)
			e.dial(extras[dialed], cm.dst, cfg.attemptTimeout)
			dialed++
		}
		echoStep(now)
	})
	if err != nil {
		return nil, err
	}
	floodTook := e.now() - floodStart
	f.phase = 2
	if _, err := pollUntil(e, cfg.after, nil, echoStep); err != nil {
		return nil, err
	}
	aliveFlood := loadgen.Alive(cm.serverPID)
	heldAtEnd := f.held

	// Release the flood; the server must take new connections again.
	for _, c := range extras {
		e.drop(c, true)
	}
	if _, err := pollUntil(e, time.Second, nil, echoStep); err != nil {
		return nil, err
	}
	for i := range cfg.probes {
		p := &conn{id: i, role: roleProbe, fd: -1}
		request(p, ring)
		e.dial(p, cm.dst, 3*time.Second)
		done := f.probeOK + f.probeFail.total()
		if _, err := pollUntil(e, 4*time.Second, func() bool { return f.probeOK+f.probeFail.total() > done }, echoStep); err != nil {
			return nil, err
		}
	}
	aliveEnd := loadgen.Alive(cm.serverPID)
	logLines := countLines(cfg.log) - logStart
	after, merr := fetchMetrics(cm.admin)

	limit := "unknown"
	if cfg.fdLimit > 0 {
		limit = fmt.Sprint(cfg.fdLimit)
	}
	r.fig("server open-file limit %s; %d connections opened beyond %d echo connections", limit, cfg.n, cfg.echoConns)
	r.fig("server process alive: after the flood %v, at the end %v", aliveFlood, aliveEnd)
	r.fig("flood answered in %s: %s", dur(floodTook), &f.outcomes)
	r.fig("held connections: %d open when released; lost before: %s", heldAtEnd, &f.heldLost)
	r.fig("echo RTT before: %s", latency(f.rtt[0]))
	r.fig("echo RTT during the flood: %s", latency(f.rtt[1]))
	r.fig("echo RTT after: %s", latency(f.rtt[2]))
	r.fig("probes after release: %d of %d succeeded; failures: %s", f.probeOK, cfg.probes, &f.probeFail)
	r.fig("server log lines during the flood: %d (limit %d)", logLines, cfg.maxLog)

	// A full server may pause its listener (upgate_listener_pauses_total),
	// as HAProxy does at maxconn: the connections it cannot hold then wait
	// in their SYN retries instead of being answered, and get in once it
	// has room again.
	pauses := 0.0
	if merr == nil {
		pauses = after.sum("upgate_listener_pauses_total") - before.sum("upgate_listener_pauses_total")
	}
	waited := f.outcomes.n[endNames[endTimeout]]
	if pauses > 0 {
		r.fig("the full server paused its listener %g times; %d connections waited unanswered meanwhile, none was lost", pauses, waited)
	}
	r.check(aliveFlood && aliveEnd, "the server process exited")
	r.check(all || pauses > 0, "%d of %d connections got no answer within %s", cfg.n-f.resolved, cfg.n, cfg.attemptTimeout+30*time.Second)
	bad := 0
	for k, v := range f.outcomes.n {
		switch {
		case k == "101 (held)", strings.HasPrefix(k, "status 5"), k == endNames[endEOF], k == endNames[endReset], k == endNames[endRefused]:
		case k == endNames[endTimeout] && pauses > 0:
		default:
			bad += v
		}
	}
	r.check(bad == 0, "%d connections ended otherwise than with a 101, a 5xx, or a close: %s", bad, &f.outcomes)
	r.check(f.heldLost.total() == 0, "%d held connections were lost: %s", f.heldLost.total(), &f.heldLost)
	r.check(len(f.echoLost) == 0, "echo connections lost: %s", strings.Join(f.echoLost, "; "))
	r.check(f.echoBad == 0, "%d wrong echoes", f.echoBad)
	r.check(f.rtt[2].TotalCount() > 0, "no echo after the flood")
	r.check(f.probeOK == cfg.probes, "%d of %d handshakes failed after the flood was released: %s",
		cfg.probes-f.probeOK, cfg.probes, &f.probeFail)
	r.check(logLines <= cfg.maxLog, "the server wrote %d log lines during the flood (at most %d allowed)", logLines, cfg.maxLog)
	if !aliveEnd && cfg.log != "" {
		for _, l := range tailLines(cfg.log, logStart, 10) {
			r.note("server log: %s", l)
		}
	}
	switch {
	case merr != nil:
		r.note("server metrics after the flood: %v", merr)
	case after.has("upgate_rejections_total", `reason="fd_limit"`):
		r.fig("server counted %g connections refused for the fd limit (upgate_rejections_total{reason=\"fd_limit\"})",
			after.sum("upgate_rejections_total", `reason="fd_limit"`)-before.sum("upgate_rejections_total", `reason="fd_limit"`))
	default:
		r.note("the server exports no upgate_rejections_total{reason=\"fd_limit\"}")
	}
	if merr == nil {
		r.addMetrics(after, before, "upgate_tcp_connections_total", "upgate_rejections_total", "upgate_http_errors_total")
	}
	return r, nil
}
