package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

// tickEvery is how often the run loops expire handshakes, sample the
// timeline and update the progress bar.
const tickEvery = int64(100 * time.Millisecond)

// handshakeHooks close each connection as soon as its 101 is verified.
type handshakeHooks struct{ e *engine }

func (h *handshakeHooks) opened(c *conn)              { h.e.closeConn(c) }
func (h *handshakeHooks) message(*conn, byte, []byte) {}
func (h *handshakeHooks) lost(*conn)                  {}

// churn keeps conc handshakes in flight until the engine clock reaches
// until; tick runs about every 100 ms. With rate > 0 it starts handshakes
// on a fixed schedule instead (at most conc in flight) and times each one
// from its scheduled start, so that a stalled server is not hidden by the
// client waiting for it (no coordinated omission).
func (e *engine) churn(until int64, conc int, rate float64, tick func(now int64)) error {
	start := e.now()
	next := start + tickEvery
	var started int64
	interval := 0.0
	if rate > 0 {
		interval = float64(time.Second) / rate
	}
	for {
		now := e.now()
		if now >= until {
			return nil
		}
		wait := min((until-now)/1e6+1, 10)
		if interval == 0 {
			for e.pending < conc {
				if !e.dial(e.keys, 0) {
					break
				}
			}
		} else {
			due := start + int64(float64(started)*interval)
			for e.pending < conc && due <= now {
				started++
				if !e.dial(e.keys, due) {
					break
				}
				due = start + int64(float64(started)*interval)
			}
			if due > now && due < now+wait*1e6 {
				e.p.Wake(due - now)
			}
		}
		if err := e.poll(int(wait)); err != nil {
			return err
		}
		if now = e.now(); now >= next {
			next = now + tickEvery
			e.expire()
			if tick != nil {
				tick(now)
			}
		}
	}
}

func runHandshake(cfg *config, pr *progress) (*Result, error) {
	h := &handshakeHooks{}
	e, err := newEngine(cfg, h)
	if err != nil {
		return nil, err
	}
	h.e = e
	defer e.p.Close()
	if cfg.warmup > 0 {
		pr.phase("warm-up", int64(cfg.warmup/time.Millisecond))
		start := e.now()
		if err := e.churn(start+int64(cfg.warmup), cfg.concurrency, cfg.rate, func(now int64) {
			pr.set((now-start)/1e6, "")
		}); err != nil {
			return nil, err
		}
		e.closeAll()
	}
	r := newResult(cfg)
	pr.phase(fmt.Sprintf("%s %s", cfg.scenario, cfg.server), int64(cfg.duration/time.Millisecond))
	e.counting = true
	cpu := startCPU(cfg.serverPID)
	start := e.now()
	lastSec, lastCount := int64(0), int64(0)
	err = e.churn(start+int64(cfg.duration), cfg.concurrency, cfg.rate, func(now int64) {
		el := now - start
		if sec := el / int64(time.Second); sec > lastSec {
			r.Timeline = append(r.Timeline, e.handshakes-lastCount)
			lastSec, lastCount = sec, e.handshakes
		}
		pr.set(el/1e6, fmt.Sprintf("%.0f hs/s", float64(e.handshakes)/(float64(el)/1e9)))
	})
	elapsed := float64(e.now()-start) / 1e9
	e.counting = false
	cpu.stop(r, e.handshakes)
	e.closeAll()
	pr.done()
	if err != nil {
		return nil, err
	}
	r.Seconds = elapsed
	e.fill(r)
	r.HandshakesPerSec = float64(e.handshakes) / elapsed
	if e.handshakes == 0 {
		return r, errors.New("no handshake completed")
	}
	return r, nil
}

// fill copies the engine's handshake counters into r.
func (e *engine) fill(r *Result) {
	r.Handshakes, r.Failed, r.Refused = e.handshakes, e.failed, e.refused
	if len(e.errs) > 0 {
		r.Errors = e.errs
	}
	r.HandshakeLatency = summarize(e.hist, true)
}

// holdHooks keep every connection open. With -deflate each connection
// first echoes one JSON message (compressed when negotiated), so that a
// server that sets up its codecs lazily has set them up.
type holdHooks struct {
	e      *engine
	lostN  int64
	echoed int64 // -deflate: echoes checked
	bad    int64 // -deflate: echoes wrong
}

func (h *holdHooks) opened(c *conn) {
	if h.e.dfl == nil {
		return
	}
	c.mask = [4]byte{byte(rand.Uint32()), byte(rand.Uint32()), byte(rand.Uint32()), byte(rand.Uint32())}
	c.seq = uint64(c.fd)
	h.e.dfl.send(c)
}

func (h *holdHooks) message(c *conn, op byte, payload []byte) {
	if h.e.dfl == nil || c.out == nil {
		return
	}
	if why := h.e.dfl.check(c, op, payload); why != "" {
		h.bad++
		h.e.failed++
		h.e.errs[why]++
	} else {
		h.echoed++
	}
	c.out = nil
}

func (h *holdHooks) lost(*conn) { h.lostN++ }

// fillTo opens connections from ring (at most conc at a time) until n are
// open, then keeps polling for settle. It fails after limit.
func (e *engine) fillTo(ring *loadgen.KeyRing, n, conc int, settle, limit time.Duration, tick func(now int64)) error {
	deadline := e.now() + int64(limit)
	next := e.now() + tickEvery
	for e.open < n {
		if e.abort != nil {
			return e.abort
		}
		now := e.now()
		if now > deadline {
			return fmt.Errorf("only %d of %d connections open after %v (failed %d, refused %d, errors %v)",
				e.open, n, limit, e.failed, e.refused, e.errs)
		}
		for e.pending < conc && e.open+e.pending < n {
			if !e.dial(ring, 0) {
				break
			}
		}
		if err := e.poll(10); err != nil {
			return err
		}
		if now = e.now(); now >= next {
			next = now + tickEvery
			e.expire()
			if tick != nil {
				tick(now)
			}
		}
	}
	return e.idle(settle)
}

// waitFor polls without dialing until done reports true; it fails after
// limit.
func (e *engine) waitFor(done func() bool, limit time.Duration, what string) error {
	deadline := e.now() + int64(limit)
	for !done() {
		if e.now() > deadline {
			return fmt.Errorf("%s: not done after %v (errors %v)", what, limit, e.errs)
		}
		if err := e.poll(10); err != nil {
			return err
		}
	}
	return nil
}

// idle polls without dialing for d.
func (e *engine) idle(d time.Duration) error {
	until := e.now() + int64(d)
	for e.now() < until {
		if err := e.poll(10); err != nil {
			return err
		}
	}
	return nil
}

func runHold(cfg *config, pr *progress) (*Result, error) {
	h := &holdHooks{}
	e, err := newEngine(cfg, h)
	if err != nil {
		return nil, err
	}
	h.e = e
	defer e.p.Close()
	defer e.closeAll()
	r := newResult(cfg)
	from := min(cfg.holdFrom, cfg.conns/2)
	r.HoldFrom = from
	settle := cfg.settle
	r.ServerRSSBase = loadgen.ProcRSS(cfg.serverPID)
	e.counting = true
	cpu := startCPU(cfg.serverPID)
	start := e.now()
	pr.phase(fmt.Sprintf("hold %s", cfg.server), int64(cfg.conns))
	tick := func(int64) { pr.set(int64(e.open), fmt.Sprintf("%d open", e.open)) }
	// fill opens n connections and, with -deflate, waits for their echoes
	// before settling.
	fill := func(n int, limit time.Duration) error {
		if e.dfl == nil {
			return e.fillTo(e.keys, n, cfg.concurrency, settle, limit, tick)
		}
		if err := e.fillTo(e.keys, n, cfg.concurrency, 0, limit, tick); err != nil {
			return err
		}
		if err := e.waitFor(func() bool { return h.echoed+h.bad+h.lostN >= int64(n) }, limit, "echoes"); err != nil {
			return err
		}
		return e.idle(settle)
	}
	if err := fill(from, time.Minute); err != nil {
		return declined(e, r, err)
	}
	rssFrom, cliFrom := loadgen.ProcRSS(cfg.serverPID), loadgen.ProcRSS(0)
	if err := fill(cfg.conns, 2*time.Minute); err != nil {
		return declined(e, r, err)
	}
	rssN, cliN := loadgen.ProcRSS(cfg.serverPID), loadgen.ProcRSS(0)
	pr.set(int64(e.open), "holding")
	holdCPU, _ := loadgen.ProcCPU(cfg.serverPID)
	holdStart := e.now()
	if err := e.idle(cfg.duration); err != nil {
		return nil, err
	}
	if c, err := loadgen.ProcCPU(cfg.serverPID); err == nil && cfg.serverPID > 0 {
		r.ServerCPUHolding = (c - holdCPU).Seconds() / (float64(e.now()-holdStart) / 1e9)
	}
	r.Seconds = float64(e.now()-start) / 1e9
	r.Held = e.open
	r.Lost = h.lostN
	e.counting = false
	cpu.stop(r, 0)
	pr.done()
	e.fill(r)
	r.ServerRSSFrom, r.ServerRSSAtN = rssFrom, rssN
	if d := float64(cfg.conns - from); d > 0 {
		r.ServerBytesPerConn = float64(rssN-rssFrom) / d
		r.ClientBytesPerConn = float64(cliN-cliFrom) / d
	}
	if e.dfl != nil {
		r.Messages = h.echoed
		e.dfl.finish(r, h.echoed)
		if h.bad > 0 {
			return r, fmt.Errorf("%d echoes wrong (%v)", h.bad, r.Errors)
		}
	}
	if r.Held < cfg.conns {
		return r, fmt.Errorf("%d of %d connections still open at the end", r.Held, cfg.conns)
	}
	return r, nil
}

// declined returns the result of a -deflate run that could not fill its
// connections, recording why (the server declined the extension), or
// only err without -deflate.
func declined(e *engine, r *Result, err error) (*Result, error) {
	if e.dfl == nil {
		return nil, err
	}
	r.Failed, r.Errors = e.failed, e.errs
	e.dfl.finish(r, 0)
	return r, err
}
