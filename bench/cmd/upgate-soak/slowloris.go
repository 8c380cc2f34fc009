package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

type slowConfig struct {
	partial      int
	silent       int
	hsTimeout    time.Duration
	slack        time.Duration
	probeEvery   time.Duration
	probeTimeout time.Duration
	echoEvery    time.Duration
	before       time.Duration
	after        time.Duration
	maxRTT       time.Duration
}

func slowFlags(fs *flag.FlagSet, cm *common) func() (*report, error) {
	cfg := &slowConfig{}
	fs.IntVar(&cfg.partial, "partial", 10000, "connections that send part of a request head, then stall")
	fs.IntVar(&cfg.silent, "silent", 5000, "connections that send nothing")
	fs.DurationVar(&cfg.hsTimeout, "handshake-timeout", 5*time.Second, "the server's --handshake-timeout")
	fs.DurationVar(&cfg.slack, "slack", 3*time.Second, "how late after the handshake timeout a stalled connection may be closed")
	fs.DurationVar(&cfg.probeEvery, "probe-every", 50*time.Millisecond, "a new handshake this often, each of which must succeed")
	fs.DurationVar(&cfg.probeTimeout, "probe-timeout", 3*time.Second, "time a probe handshake has to succeed")
	fs.DurationVar(&cfg.echoEvery, "echo-every", 10*time.Millisecond, "the echo client's message interval")
	fs.DurationVar(&cfg.before, "before", 3*time.Second, "echo and probes alone before the attack, for the baseline")
	fs.DurationVar(&cfg.after, "after", time.Second, "echo and probes after every stalled connection was closed")
	fs.DurationVar(&cfg.maxRTT, "max-rtt", 250*time.Millisecond, "the echo round trip's p99 during the attack must stay below this")
	return func() (*report, error) {
		if cfg.partial < 0 || cfg.silent < 0 || cfg.partial+cfg.silent == 0 {
			return nil, fmt.Errorf("-partial and -silent must not be negative, and not both zero")
		}
		if cfg.hsTimeout <= 0 || cfg.probeEvery <= 0 || cfg.echoEvery <= 0 {
			return nil, fmt.Errorf("-handshake-timeout, -probe-every and -echo-every must be positive")
		}
		return runSlowloris(cm, cfg)
	}
}

// slowRun is the slowloris scenario's state.
type slowRun struct {
	cfg    *slowConfig
	e      *engine
	during bool

	echo      *conn
	echoLost  string
	echoBad   int64
	rttBefore *hdrhistogram.Histogram
	rttDuring *hdrhistogram.Histogram
	rttAfter  *hdrhistogram.Histogram
	afterPh   bool

	probes     int
	probeOK    int
	probeFail  counter
	probeLat   *hdrhistogram.Histogram
	slowEnded  int
	outcomes   [2]counter // by role: partial, silent
	closeAfter [2]*hdrhistogram.Histogram
	early      int // closed before the handshake timeout
	late       int // closed after timeout + slack
	unopened   int // never connected
}

func (s *slowRun) opened(c *conn) {
	switch c.role {
	case roleProbe:
		s.probeOK++
		_ = s.probeLat.RecordValue(s.e.now() - c.t0)
		s.e.drop(c, true)
	case roleEcho:
		if c.out == nil {
			c.out = make([]byte, 64)
		}
	default:
		// A stalled connection cannot complete a handshake.
		s.outcomes[slowIndex(c)].add("status 101 (?)")
		s.slowEnded++
		s.e.drop(c, true)
	}
}

func (s *slowRun) message(c *conn, _ byte, p []byte) {
	if c.role != roleEcho {
		return
	}
	rtt, ok := s.e.echoed(c, p)
	if !ok {
		s.echoBad++
		return
	}
	h := s.rttBefore
	switch {
	case s.afterPh:
		h = s.rttAfter
	case s.during:
		h = s.rttDuring
	}
	_ = h.RecordValue(rtt)
}

func (s *slowRun) ended(c *conn, o outcome) {
	switch c.role {
	case roleProbe:
		s.probeFail.add(o.String())
	case roleEcho:
		s.echoLost = fmt.Sprintf("%s at %s", o, time.Now().Format("15:04:05.000"))
	default:
		s.slowEnded++
		i := slowIndex(c)
		s.outcomes[i].add(o.String())
		if c.tc == 0 {
			s.unopened++
			return
		}
		d := s.e.now() - c.tc
		_ = s.closeAfter[i].RecordValue(d)
		// The server's timer ticks every 100 ms: allow one tick early.
		if d < int64(s.cfg.hsTimeout)-int64(150*time.Millisecond) {
			s.early++
		}
		if d > int64(s.cfg.hsTimeout+s.cfg.slack) {
			s.late++
		}
	}
}

func slowIndex(c *conn) int {
	if c.role == roleSilent {
		return 1
	}
	return 0
}

func runSlowloris(cm *common, cfg *slowConfig) (*report, error) {
	r := newReport("slowloris")
	s := &slowRun{cfg: cfg, rttBefore: newHist(), rttDuring: newHist(), rttAfter: newHist(), probeLat: newHist()}
	s.closeAfter = [2]*hdrhistogram.Histogram{newHist(), newHist()}
	e, err := newEngine(cm.sources, s)
	if err != nil {
		return nil, err
	}
	defer e.close()
	s.e = e
	before, err := fetchMetrics(cm.admin)
	if err != nil {
		return nil, fmt.Errorf("server metrics: %w", err)
	}
	ring := loadgen.NewKeyRing(256, cm.addr, "/echo")
	s.echo = &conn{role: roleEcho, fd: -1}
	request(s.echo, ring)
	e.dial(s.echo, cm.dst, 5*time.Second)
	if ok, err := pollUntil(e, 5*time.Second, func() bool { return s.echo.state == stOpen }, nil); err != nil || !ok {
		return nil, fmt.Errorf("the echo client did not connect (%v, %s)", err, s.echoLost)
	}

	// The echo client and the prober run through every phase.
	nextProbe, nextEcho := e.now(), e.now()
	background := func(now int64) {
		if c := s.echo; c.state == stOpen && c.sentAt == 0 && now >= nextEcho {
			c.seq++
			fillPayload(c.out, c.seq)
			c.sentAt = now
			nextEcho = now + int64(cfg.echoEvery)
			e.send(c, loadgen.OpBinary, c.out)
		}
		for now >= nextProbe {
			nextProbe += int64(cfg.probeEvery)
			p := &conn{role: roleProbe, fd: -1}
			request(p, ring)
			s.probes++
			e.dial(p, cm.dst, cfg.probeTimeout)
		}
	}
	if _, err := pollUntil(e, cfg.before, nil, background); err != nil {
		return nil, err
	}

	// The attack: partial heads and silent connections, interleaved.
	n := cfg.partial + cfg.silent
	partialHead := []byte("GET /echo HTTP/1.1\r\nHost: " + cm.addr + "\r\nUpgrade: websocket\r\n")
	slow := make([]*conn, n)
	for i := range slow {
		c := &conn{id: i, role: rolePartial, fd: -1, send: partialHead}
		// spread the silent ones evenly among the partial ones
		if cfg.silent > 0 && (i*cfg.silent)/n != ((i+1)*cfg.silent)/n {
			c.role, c.send = roleSilent, nil
		}
		slow[i] = c
	}
	s.during = true
	attackStart := e.now()
	watchdog := cfg.hsTimeout + cfg.slack + 10*time.Second
	next := 0
	var opened int64
	all, err := pollUntil(e, 2*time.Minute, func() bool { return s.slowEnded == n }, func(now int64) {
		for next < n && e.conning < cm.conc {
			e.dial(slow[next], cm.dst, watchdog)
			next++
		}
		if next == n && opened == 0 && e.conning == 0 {
			opened = now
		}
		background(now)
	})
	if err != nil {
		return nil, err
	}
	attackEnd := e.now()
	s.during, s.afterPh = false, true
	if _, err := pollUntil(e, cfg.after, nil, background); err != nil {
		return nil, err
	}
	// Let the last probes finish.
	if _, err := pollUntil(e, cfg.probeTimeout, func() bool { return s.probeOK+s.probeFail.total() == s.probes }, nil); err != nil {
		return nil, err
	}
	after, merr := fetchMetrics(cm.admin)

	r.fig("stalled connections: %d with a partial request head, %d silent; handshake timeout %s",
		cfg.partial, cfg.silent, cfg.hsTimeout)
	if opened > 0 {
		r.fig("all %d connected within %s; the last was closed %s after the first connect", n, dur(opened-attackStart), dur(attackEnd-attackStart))
	}
	r.fig("partial heads ended by: %s; closed after %s", &s.outcomes[0], latency(s.closeAfter[0]))
	r.fig("silent ended by: %s; closed after %s", &s.outcomes[1], latency(s.closeAfter[1]))
	r.check(all, "%d of %d stalled connections not closed by the server within %s", n-s.slowEnded, n, 2*time.Minute)
	bad := 0
	for k, v := range s.outcomes[0].n {
		if k != "status 408" {
			bad += v
		}
	}
	r.check(bad == 0, "%d partial heads did not get 408: %s", bad, &s.outcomes[0])
	bad = 0
	for k, v := range s.outcomes[1].n {
		if k != "status 408" && k != endNames[endEOF] {
			bad += v
		}
	}
	r.check(bad == 0, "%d silent connections were not answered 408 nor closed: %s", bad, &s.outcomes[1])
	r.check(s.unopened == 0, "%d stalled connections never connected", s.unopened)
	r.check(s.early == 0, "%d stalled connections were closed before the handshake timeout", s.early)
	r.check(s.late == 0, "%d stalled connections were closed more than %s after the handshake timeout", s.late, cfg.slack)

	r.fig("probes: %d of %d handshakes succeeded (one every %s); latency %s; failures: %s",
		s.probeOK, s.probes, cfg.probeEvery, latency(s.probeLat), &s.probeFail)
	r.check(s.probeOK == s.probes, "%d of %d probe handshakes failed: %s", s.probes-s.probeOK, s.probes, &s.probeFail)

	r.fig("echo RTT before: %s", latency(s.rttBefore))
	r.fig("echo RTT during: %s", latency(s.rttDuring))
	r.fig("echo RTT after: %s", latency(s.rttAfter))
	r.check(s.echoLost == "", "the echo connection was lost: %s", s.echoLost)
	r.check(s.echoBad == 0, "%d wrong echoes", s.echoBad)
	r.check(s.rttDuring.TotalCount() > 0, "no echo during the attack")
	if p99 := s.rttDuring.ValueAtQuantile(99); p99 > int64(cfg.maxRTT) {
		r.fail("echo RTT p99 during the attack %s, over the %s allowed", dur(p99), cfg.maxRTT)
	}

	if merr != nil {
		r.fail("server metrics after the attack: %v", merr)
	} else {
		closed := 0
		for _, o := range s.outcomes {
			closed += o.n["status 408"] + o.n[endNames[endEOF]]
		}
		hs := after.sum("upgate_timeouts_total", `kind="handshake"`) - before.sum("upgate_timeouts_total", `kind="handshake"`)
		r.fig("server counted %g handshake timeouts (upgate_timeouts_total{kind=\"handshake\"}) for %d stalled connections closed", hs, closed)
		r.check(hs >= float64(closed), "the server counted %g handshake timeouts for %d stalled connections closed", hs, closed)
		r.addMetrics(after, before, "upgate_timeouts_total", "upgate_http_errors_total")
	}
	return r, nil
}
