package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

type holdConfig struct {
	n            int
	d            time.Duration
	warmup       time.Duration
	echoEvery    time.Duration
	size         int
	interleave   bool
	publishEvery time.Duration
	topic        string
	rssEvery     time.Duration
	band         float64
	contention   time.Duration
	busy         int
	drain        bool
	drainWait    time.Duration
}

func holdFlags(fs *flag.FlagSet, cm *common) func() (*report, error) {
	cfg := &holdConfig{}
	fs.IntVar(&cfg.n, "n", 19000, "connections: half echo on /echo, half subscribed to -topic on /ws/{topic}")
	fs.DurationVar(&cfg.d, "d", 10*time.Minute, "how long to hold them once all are open")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Minute, "part of -d before the memory must be steady (the heap grows through the first ping cycles and pool fills: about 3 min for 19 000 connections)")
	fs.DurationVar(&cfg.echoEvery, "echo-every", 30*time.Second, "each echo connection sends a message this often, spread evenly")
	fs.IntVar(&cfg.size, "size", 64, "echo message size in bytes")
	fs.BoolVar(&cfg.interleave, "interleave", false, "open subscribers and echo connections alternately (with loops dealt in turn, every subscriber lands on one event loop) instead of subscribers first")
	fs.DurationVar(&cfg.publishEvery, "publish-every", 100*time.Millisecond, "the admin API publishes a numbered message this often")
	fs.StringVar(&cfg.topic, "topic", "soak", "topic of the subscribers")
	fs.DurationVar(&cfg.rssEvery, "rss-every", 5*time.Second, "server memory sampling interval")
	fs.Float64Var(&cfg.band, "rss-band", 0.05, "after warm-up, server RSS must stay within this fraction of its mean")
	fs.DurationVar(&cfg.contention, "contention", 0, "run busy loops beside the server this long, in the middle of the hold")
	fs.IntVar(&cfg.busy, "busy", 2, "busy-loop processes for -contention")
	fs.BoolVar(&cfg.drain, "drain", false, "at the end, SIGTERM the server and count the 1001 closes")
	fs.DurationVar(&cfg.drainWait, "drain-wait", 20*time.Second, "how long to wait for the drain to close everything")
	return func() (*report, error) {
		switch {
		case cfg.n < 2:
			return nil, fmt.Errorf("-n must be at least 2")
		case cfg.echoEvery <= 0 || cfg.publishEvery <= 0 || cfg.rssEvery <= 0:
			return nil, fmt.Errorf("-echo-every, -publish-every and -rss-every must be positive")
		case cfg.contention > cfg.d:
			return nil, fmt.Errorf("-contention must not exceed -d")
		}
		return runHold(cm, cfg)
	}
}

// closeEvent is a connection that ended without the client asking.
type closeEvent struct {
	at   time.Time
	t    float64 // seconds since the run started
	role uint8
	o    outcome
}

// holdRun is the hold scenario's state.
type holdRun struct {
	cm   *common
	cfg  *holdConfig
	e    *engine
	echo []*conn
	subs []*conn

	holding    bool
	fillFailed counter
	echoSent   int64
	echoOK     int64
	echoBad    int64
	echoLate   int64 // no echo before the next message was due
	rtt        *hdrhistogram.Histogram
	deliveries int64
	gaps       int64 // deliveries that skipped sequence numbers
	skipped    int64 // sequence numbers skipped
	reorders   int64 // deliveries at or below the last sequence number
	malformed  int64
	firstGap   string
	unexpected []closeEvent
	byOutcome  counter

	draining   bool
	drain1001  int
	drainLast  int64
	drainOther counter
}

func (h *holdRun) opened(c *conn) {
	if c.role == roleEcho && c.out == nil {
		c.out = make([]byte, h.cfg.size)
	}
}

func (h *holdRun) message(c *conn, _ byte, p []byte) {
	switch c.role {
	case roleEcho:
		rtt, ok := h.e.echoed(c, p)
		if !ok {
			h.echoBad++
			return
		}
		h.echoOK++
		_ = h.rtt.RecordValue(rtt)
	case roleSub:
		seq, ok := parseSeq(p)
		switch {
		case !ok:
			h.malformed++
		case seq == c.seq+1:
			h.deliveries++
		case seq > c.seq+1:
			h.deliveries++
			h.gaps++
			h.skipped += int64(seq - c.seq - 1)
			if h.firstGap == "" {
				h.firstGap = fmt.Sprintf("subscriber %d got #%d after #%d, %s", c.id, seq, c.seq, time.Now().Format(time.TimeOnly))
			}
		default:
			h.reorders++
			if h.firstGap == "" {
				h.firstGap = fmt.Sprintf("subscriber %d got #%d after #%d, %s", c.id, seq, c.seq, time.Now().Format(time.TimeOnly))
			}
			return
		}
		c.seq = seq
	}
}

func (h *holdRun) ended(c *conn, o outcome) {
	if !o.wasOpen && !h.holding && !h.draining {
		h.fillFailed.add(o.String())
		c.done = true
		return
	}
	if h.draining && o.kind == endClose && o.code == 1001 {
		h.drain1001++
		h.drainLast = h.e.now()
		return
	}
	if h.draining {
		h.drainOther.add(o.String())
		return
	}
	h.byOutcome.add(roleNames[c.role] + ": " + o.String())
	h.unexpected = append(h.unexpected, closeEvent{at: time.Now(), t: secs(h.e.now()), role: c.role, o: o})
}

// parseSeq reads a decimal sequence number.
func parseSeq(p []byte) (uint64, bool) {
	if len(p) == 0 || len(p) > 19 {
		return 0, false
	}
	var n uint64
	for _, b := range p {
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + uint64(b-'0')
	}
	return n, true
}

// fillPayload writes message seq's bytes: a pattern that changes with
// every message, so that a stale or corrupted echo is caught.
func fillPayload(b []byte, seq uint64) {
	s := byte(seq*131 + 7)
	for i := range b {
		b[i] = s + byte(i)
	}
}

func runHold(cm *common, cfg *holdConfig) (*report, error) {
	r := newReport("hold")
	h := &holdRun{cm: cm, cfg: cfg, rtt: newHist()}
	e, err := newEngine(cm.sources, h)
	if err != nil {
		return nil, err
	}
	defer e.close()
	h.e = e
	nEcho := cfg.n / 2
	nSub := cfg.n - nEcho
	start := time.Now()
	mem := newSampler(cm.serverPID, cfg.rssEvery)
	before, err := fetchMetrics(cm.admin)
	if err != nil {
		return nil, fmt.Errorf("server metrics: %w", err)
	}

	// Connect: subscribers first, then the echo connections.
	subRing := loadgen.NewKeyRing(1024, cm.addr, "/ws/"+cfg.topic)
	echoRing := loadgen.NewKeyRing(1024, cm.addr, "/echo")
	all := make([]*conn, 0, cfg.n)
	for i := range cfg.n {
		c := &conn{id: i, role: roleSub, fd: -1}
		if i >= nSub {
			c.role, c.id = roleEcho, i-nSub
			h.echo = append(h.echo, c)
		} else {
			h.subs = append(h.subs, c)
		}
		all = append(all, c)
	}
	if cfg.interleave {
		// One subscriber, one echo connection, and so on: a server that
		// deals connections to its event loops in turn puts every
		// subscriber on the same loop.
		all = all[:0]
		for i := range max(len(h.subs), len(h.echo)) {
			if i < len(h.subs) {
				all = append(all, h.subs[i])
			}
			if i < len(h.echo) {
				all = append(all, h.echo[i])
			}
		}
	}
	next := 0
	fillDone := func() bool { return e.open+h.fillFailed.total() == cfg.n && e.pending == 0 }
	_, err = pollUntil(e, 3*time.Minute, fillDone, func(now int64) {
		for next < len(all) && e.pending < cm.conc {
			c := all[next]
			next++
			ring := subRing
			if c.role == roleEcho {
				ring = echoRing
			}
			request(c, ring)
			e.dial(c, cm.dst, 30*time.Second)
		}
		mem.sample(now, e.open, "connect")
	})
	if err != nil {
		return nil, err
	}
	established := e.now()
	r.fig("connections: %d of %d open after %.1fs (%d echo on /echo, %d subscribed to /ws/%s); failed: %s",
		e.open, cfg.n, secs(established), nEcho, nSub, cfg.topic, &h.fillFailed)
	r.check(e.open == cfg.n, "only %d of %d connections opened (%s)", e.open, cfg.n, &h.fillFailed)

	// Hold: echo messages spread evenly, publishes from the admin API.
	h.holding = true
	pub := startPublisher("http://"+cm.admin+"/publish/"+cfg.topic, cfg.publishEvery, nSub)
	holdStart := e.now()
	holdEnd := holdStart + int64(cfg.d)
	warmEnd := holdStart + int64(cfg.warmup)
	step := int64(cfg.echoEvery) / int64(max(len(h.echo), 1))
	nextEcho, idx := holdStart, 0
	var busyFrom, busyTo int64
	busyOn := false
	if cfg.contention > 0 {
		busyFrom = holdStart + (int64(cfg.d)-int64(cfg.contention))/2
		busyTo = busyFrom + int64(cfg.contention)
	}
	lastLog := holdStart
	_, err = pollUntil(e, cfg.d, nil, func(now int64) {
		for now >= nextEcho && len(h.echo) > 0 {
			c := h.echo[idx]
			if idx++; idx == len(h.echo) {
				idx = 0
			}
			nextEcho += step
			if c.state != stOpen {
				continue
			}
			if c.sentAt != 0 {
				h.echoLate++
			}
			c.seq++
			fillPayload(c.out, c.seq)
			c.sentAt = now
			h.echoSent++
			e.send(c, loadgen.OpBinary, c.out)
		}
		phase := "warm-up"
		if now >= warmEnd {
			phase = "hold"
		}
		if cfg.contention > 0 && !busyOn && now >= busyFrom && now < busyTo {
			busyOn = true
			cpus, err := startBusy(cfg.busy, cm.serverPID)
			if err != nil {
				r.fail("contention: %v", err)
			} else {
				r.fig("contention: %d busy loops on CPU %s from %.0fs to %.0fs of the hold",
					cfg.busy, cpus, secs(busyFrom-holdStart), secs(busyTo-holdStart))
			}
		}
		if busyOn && now >= busyTo {
			busyOn = false
			stopBusy()
		}
		if busyOn {
			phase = "contention"
		}
		mem.sample(now, e.open, phase)
		if now-lastLog >= int64(time.Minute) {
			lastLog = now
			fmt.Printf("hold: %.0fs: %d open, %d deliveries, %d echoes, %d unexpected closes, server RSS %s\n",
				secs(now-holdStart), e.open, h.deliveries, h.echoOK, len(h.unexpected), mib(float64(mem.last())))
		}
	})
	stopBusy()
	if err != nil {
		pub.stop()
		return nil, err
	}
	holdEnd = e.now()
	mem.sample(holdEnd, e.open, "hold")
	final := pub.stop()
	held := e.open

	// Let the last publishes and echoes arrive.
	_, err = pollUntil(e, 3*time.Second, func() bool {
		for _, c := range h.subs {
			if c.state == stOpen && c.seq < final {
				return false
			}
		}
		for _, c := range h.echo {
			if c.state == stOpen && c.sentAt != 0 {
				return false
			}
		}
		return true
	}, nil)
	if err != nil {
		return nil, err
	}
	after, merr := fetchMetrics(cm.admin)
	if merr != nil {
		r.fail("server metrics after the hold: %v", merr)
	}
	h.holdReport(r, pub, final, held, secs(holdEnd-holdStart))
	mem.report(r, warmEnd, holdEnd, cfg.band)
	r.addMetrics(after, before, "upgate_timeouts_total", "upgate_closes_total", "upgate_pings_sent_total",
		"upgate_slow_consumers_total", "upgate_rejections_total", "upgate_protocol_errors_total")
	if cm.out != "" {
		csv, png := filepath.Join(cm.out, "hold-rss.csv"), filepath.Join(cm.out, "hold-rss.png")
		if err := mem.writeCSV(csv); err != nil {
			r.fail("writing %s: %v", csv, err)
		}
		if err := mem.plot(png, established, warmEnd, holdEnd, busyFrom, busyTo, cfg.band); err != nil {
			r.fail("plotting %s: %v", png, err)
		}
		r.fig("server RSS over time: hold-rss.csv, hold-rss.png")
	}
	if cfg.drain {
		if err := h.drain(r); err != nil {
			return r, err
		}
	}
	r.fig("run: %s, client GOMAXPROCS %d", time.Since(start).Round(time.Second), maxProcs())
	return r, nil
}

// holdReport adds the hold's figures and checks to r.
func (h *holdRun) holdReport(r *report, pub *publisher, final uint64, held int, seconds float64) {
	cfg := h.cfg
	r.fig("held: %d connections for %.0fs", held, seconds)
	r.fig("publishes: %d (1 every %s), errors %d, answered with fewer deliveries than subscribers %d, slowest answer %s",
		final, cfg.publishEvery, pub.errors.Load(), pub.short.Load(), dur(pub.slowest.Load()))
	if msg := pub.lastErr.Load(); msg != nil {
		r.fail("publish failed: %s", *msg)
	}
	missing := int64(0)
	behind := 0
	for _, c := range h.subs {
		if c.state == stOpen && c.seq < final {
			behind++
			missing += int64(final - c.seq)
		}
	}
	expected := int64(final) * int64(len(h.subs))
	r.fig("deliveries: %d of %d expected (gaps %d, skipped numbers %d, out of order %d, malformed %d)",
		h.deliveries, expected, h.gaps, h.skipped, h.reorders, h.malformed)
	r.check(h.gaps == 0 && h.reorders == 0 && h.malformed == 0,
		"deliveries out of sequence: %d gaps, %d out of order, %d malformed (first: %s)", h.gaps, h.reorders, h.malformed, h.firstGap)
	r.check(behind == 0, "%d subscribers still open missed %d of the last publishes", behind, missing)
	r.check(pub.errors.Load() == 0, "%d publishes failed", pub.errors.Load())
	r.fig("echo: %d sent, %d echoed, RTT %s; wrong %d, not echoed before the next was due %d",
		h.echoSent, h.echoOK, latency(h.rtt), h.echoBad, h.echoLate)
	late := 0
	for _, c := range h.echo {
		if c.state == stOpen && c.sentAt != 0 {
			late++
		}
	}
	r.check(h.echoBad == 0 && h.echoLate == 0 && late == 0, "echo: %d wrong, %d not echoed in time, %d unanswered at the end",
		h.echoBad, h.echoLate, late)
	r.check(h.echoSent > 0, "no echo message was sent (hold shorter than one echo interval?)")
	r.fig("pings answered: %d", h.e.pings)
	r.fig("unexpected closes: %d (%s)", len(h.unexpected), &h.byOutcome)
	for i, ev := range h.unexpected {
		if i == 20 {
			r.fig("… %d more unexpected closes", len(h.unexpected)-20)
			break
		}
		r.fail("unexpected close of a %s connection at %s (%.1fs into the run): %s",
			roleNames[ev.role], ev.at.Format("15:04:05.000"), ev.t, ev.o)
	}
	if len(h.unexpected) > 20 {
		r.fail("%d unexpected closes in all", len(h.unexpected))
	}
}

// drain sends SIGTERM to the server and counts the 1001 closes.
func (h *holdRun) drain(r *report) error {
	e := h.e
	open := e.open
	h.holding, h.draining = false, true
	start := e.now()
	if err := syscall.Kill(h.cm.serverPID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	all, err := pollUntil(e, h.cfg.drainWait, func() bool { return e.open == 0 && e.pending == 0 }, nil)
	if err != nil {
		return err
	}
	r.fig("drain: %d of %d connections got close 1001, the last %s after SIGTERM; other endings: %s",
		h.drain1001, open, dur(h.drainLast-start), &h.drainOther)
	r.check(all, "drain: %d connections still open %s after SIGTERM", e.open, h.cfg.drainWait)
	r.check(h.drain1001 == open, "drain: %d of %d connections got close 1001 (others: %s)", h.drain1001, open, &h.drainOther)
	return nil
}
