package main

import (
	"container/heap"
	"flag"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

type stormConfig struct {
	n              int
	jitter         time.Duration
	attemptTimeout time.Duration
	limit          time.Duration
	rst            bool
	rate, burst    float64
}

func stormFlags(fs *flag.FlagSet, cm *common) func() (*report, error) {
	cfg := &stormConfig{}
	fs.IntVar(&cfg.n, "n", 19000, "clients")
	fs.DurationVar(&cfg.jitter, "jitter", time.Second, "random delay added to each Retry-After (0 to it)")
	fs.DurationVar(&cfg.attemptTimeout, "attempt-timeout", 30*time.Second, "time an attempt has to get an answer")
	fs.DurationVar(&cfg.limit, "limit", 3*time.Minute, "time all clients have to be back")
	fs.BoolVar(&cfg.rst, "rst", false, "drop the connections with RST instead of FIN")
	fs.Float64Var(&cfg.rate, "connect-rate", 0, "the server's --connect-rate (for the report)")
	fs.Float64Var(&cfg.burst, "connect-burst", 0, "the server's --connect-burst (for the report)")
	_ = fs.Set("c", "4096")
	return func() (*report, error) {
		if cfg.n < 1 {
			return nil, fmt.Errorf("-n must be positive")
		}
		return runStorm(cm, cfg)
	}
}

// retryQueue orders clients by the time they dial again.
type retryQueue []*conn

func (q retryQueue) Len() int           { return len(q) }
func (q retryQueue) Less(i, j int) bool { return q[i].retryAt < q[j].retryAt }
func (q retryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *retryQueue) Push(x any)        { *q = append(*q, x.(*conn)) }
func (q *retryQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// stormRun is the storm scenario's state.
type stormRun struct {
	cfg      *stormConfig
	e        *engine
	q        retryQueue
	attempts []int // by client, in the current phase
	outcomes counter
	failures counter
	first    string // first failure, with its time
	lost     int    // open connections the server ended
}

func (s *stormRun) fail(what string) {
	s.failures.add(what)
	if s.first == "" {
		s.first = fmt.Sprintf("%s at %s", what, time.Now().Format("15:04:05.000"))
	}
}

func (s *stormRun) opened(*conn) { s.outcomes.add("101") }

func (s *stormRun) message(*conn, byte, []byte) {}

func (s *stormRun) ended(c *conn, o outcome) {
	wait := time.Second
	switch {
	case o.wasOpen:
		s.lost++
		s.fail("open connection ended by the server: " + o.String())
	case o.kind == endStatus && (o.code == 429 || o.code == 503):
		s.outcomes.add(fmt.Sprintf("%d", o.code))
		if o.retryAfter < 0 {
			s.fail(fmt.Sprintf("%d without Retry-After", o.code))
		} else {
			wait = time.Duration(o.retryAfter) * time.Second
		}
	default:
		s.outcomes.add(o.String())
		s.fail(o.String())
	}
	if s.cfg.jitter > 0 {
		wait += rand.N(s.cfg.jitter)
	}
	c.retryAt = s.e.now() + int64(wait)
	heap.Push(&s.q, c)
}

// reconnect dials every client that is due, at most conc connecting at once.
func (s *stormRun) reconnect(now int64, ring *loadgen.KeyRing, cm *common) {
	for len(s.q) > 0 && s.q[0].retryAt <= now && s.e.conning < cm.conc {
		c := heap.Pop(&s.q).(*conn)
		s.attempts[c.id]++
		request(c, ring)
		s.e.dial(c, cm.dst, s.cfg.attemptTimeout)
	}
}

// phase dials every client in all and waits until all are open; it returns
// how long that took and whether they all made it.
func (s *stormRun) phase(all []*conn, ring *loadgen.KeyRing, cm *common) (time.Duration, bool, error) {
	start := s.e.now()
	s.outcomes, s.failures = counter{}, counter{}
	clear(s.attempts)
	for _, c := range all {
		c.retryAt = start
		heap.Push(&s.q, c)
	}
	ok, err := pollUntil(s.e, s.cfg.limit, func() bool { return s.e.open == len(all) }, func(now int64) {
		s.reconnect(now, ring, cm)
	})
	return time.Duration(s.e.now() - start), ok, err
}

func runStorm(cm *common, cfg *stormConfig) (*report, error) {
	r := newReport("storm")
	s := &stormRun{cfg: cfg, attempts: make([]int, cfg.n)}
	e, err := newEngine(cm.sources, s)
	if err != nil {
		return nil, err
	}
	defer e.close()
	s.e = e
	ring := loadgen.NewKeyRing(4096, cm.addr, "/echo")
	all := make([]*conn, cfg.n)
	for i := range all {
		all[i] = &conn{id: i, role: roleStorm, fd: -1}
	}
	limits := "no connect rate limit given"
	if cfg.rate > 0 {
		limits = fmt.Sprintf("server connect rate %g/s, burst %g", cfg.rate, cfg.burst)
	}
	r.fig("clients: %d on /echo; %s; at most %d connecting at once", cfg.n, limits, cm.conc)

	took, ok, err := s.phase(all, ring, cm)
	if err != nil {
		return nil, err
	}
	r.fig("first connect: all %d open after %s; attempts by outcome: %s", e.open, took.Round(time.Millisecond), &s.outcomes)
	r.check(ok, "first connect: only %d of %d open after %s", e.open, cfg.n, cfg.limit)
	r.check(s.failures.total() == 0, "first connect: attempts without a 101, 429 or 503: %s (first: %s)", &s.failures, s.first)
	if !ok {
		return r, nil
	}
	if _, err := pollUntil(e, time.Second, nil, nil); err != nil {
		return nil, err
	}
	before, err := fetchMetrics(cm.admin)
	if err != nil {
		return nil, fmt.Errorf("server metrics: %w", err)
	}

	// The storm: drop everything at once, and everyone reconnects at once.
	for _, c := range all {
		e.drop(c, cfg.rst)
	}
	how := "FIN"
	if cfg.rst {
		how = "RST"
	}
	took, ok, err = s.phase(all, ring, cm)
	if err != nil {
		return nil, err
	}
	maxAttempts := 0
	for _, a := range s.attempts {
		maxAttempts = max(maxAttempts, a)
	}
	attempts := s.outcomes.total()
	r.fig("storm: all %d dropped at once (%s) and reconnecting at once", cfg.n, how)
	r.fig("back: %d of %d after %s (%.0f connections/s); %d attempts, at most %d by one client",
		e.open, cfg.n, took.Round(time.Millisecond), float64(cfg.n)/took.Seconds(), attempts, maxAttempts)
	r.fig("attempts by outcome: %s", &s.outcomes)
	r.check(ok, "storm: only %d of %d back after %s", e.open, cfg.n, cfg.limit)
	r.check(s.failures.total() == 0, "storm: attempts without a 101, 429 or 503 (with Retry-After): %s (first: %s)", &s.failures, s.first)
	if cfg.rate > 0 {
		ideal := max(float64(cfg.n)-cfg.burst, 0) / cfg.rate
		r.fig("the rate limit alone would take %.1fs", ideal)
	}
	// Hold them a moment: none may be lost.
	s.lost = 0
	if _, err := pollUntil(e, time.Second, nil, nil); err != nil {
		return nil, err
	}
	r.check(s.lost == 0, "%d connections lost after the storm", s.lost)
	after, err := fetchMetrics(cm.admin)
	if err != nil {
		r.fail("server metrics after the storm: %v", err)
	}
	r.addMetrics(after, before, "upgate_rejections_total", "upgate_handshakes_total", "upgate_timeouts_total", "upgate_http_errors_total")
	return r, nil
}
