package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

// ticking runs work on a goroutine and calls tick about every 100 ms, with
// the time elapsed, until it returns.
func ticking(work func(), tick func(el time.Duration)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		work()
	}()
	start := time.Now()
	t := time.NewTicker(time.Duration(tickEvery))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if tick != nil {
				tick(time.Since(start))
			}
		}
	}
}

// sleepTicking waits d, calling tick about every 100 ms.
func sleepTicking(d time.Duration, tick func(el time.Duration)) {
	ticking(func() { time.Sleep(d) }, tick)
}

// newTLSResult is newResult for a TLS scenario.
func newTLSResult(cfg *config) *Result {
	r := newResult(cfg)
	r.Scenario = "tls-" + cfg.scenario
	return r
}

func runTLSHandshake(cfg *config, pr *progress) (*Result, error) {
	t, err := newTLSClient(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.warmup > 0 {
		pr.phase("warm-up", int64(cfg.warmup/time.Millisecond))
		until := time.Now().Add(cfg.warmup)
		ticking(func() { t.churn(cfg.concurrency, until) }, func(el time.Duration) { pr.set(el.Milliseconds(), "") })
	}
	r := newTLSResult(cfg)
	pr.phase(fmt.Sprintf("tls-handshake %s", cfg.server), int64(cfg.duration/time.Millisecond))
	t.counting.Store(true)
	cpu := startCPU(cfg.serverPID)
	start := time.Now()
	lastSec, lastCount := int64(0), int64(0)
	ticking(func() { t.churn(cfg.concurrency, start.Add(cfg.duration)) }, func(el time.Duration) {
		t.mu.Lock()
		n := t.handshakes
		t.mu.Unlock()
		if sec := int64(el / time.Second); sec > lastSec && sec <= int64(cfg.duration/time.Second) {
			r.Timeline = append(r.Timeline, n-lastCount)
			lastSec, lastCount = sec, n
		}
		pr.set(el.Milliseconds(), fmt.Sprintf("%.0f hs/s", float64(n)/el.Seconds()))
	})
	elapsed := min(time.Since(start), cfg.duration).Seconds()
	t.counting.Store(false)
	t.mu.Lock()
	hs := t.handshakes
	t.mu.Unlock()
	cpu.stop(r, hs)
	pr.done()
	r.Seconds = elapsed
	t.fillResult(r)
	r.HandshakesPerSec = float64(hs) / elapsed
	if hs == 0 {
		return r, errors.New("no handshake completed")
	}
	return r, nil
}

// holdReader answers pings on a held connection and notices its end.
func (t *tlsClient) holdReader(c *wssConn) {
	for {
		if op, _, kind := c.next(); op == 0 {
			t.lose(c, kind)
			return
		}
	}
}

func runTLSHold(cfg *config, pr *progress) (*Result, error) {
	t, err := newTLSClient(cfg)
	if err != nil {
		return nil, err
	}
	defer t.closeAll()
	r := newTLSResult(cfg)
	from := min(cfg.holdFrom, cfg.conns/2)
	r.HoldFrom = from
	r.ServerRSSBase = loadgen.ProcRSS(cfg.serverPID)
	t.counting.Store(true)
	cpu := startCPU(cfg.serverPID)
	start := time.Now()
	pr.phase(fmt.Sprintf("tls-hold %s", cfg.server), int64(cfg.conns))
	tick := func(time.Duration) { n := t.openConns(); pr.set(int64(n), fmt.Sprintf("%d open", n)) }
	serve := func(c *wssConn) { go t.holdReader(c) }
	// fillTo opens connections until n are open, then lets them settle.
	fillTo := func(n int, limit time.Duration) error {
		var ferr error
		ticking(func() { ferr = t.fill(n, cfg.concurrency, limit, serve) }, tick)
		if ferr == nil {
			sleepTicking(cfg.settle, tick)
		}
		return ferr
	}
	if err := fillTo(from, time.Minute); err != nil {
		return nil, err
	}
	rssFrom, cliFrom := loadgen.ProcRSS(cfg.serverPID), loadgen.ProcRSS(0)
	if err := fillTo(cfg.conns, 2*time.Minute); err != nil {
		return nil, err
	}
	rssN, cliN := loadgen.ProcRSS(cfg.serverPID), loadgen.ProcRSS(0)
	pr.set(int64(t.openConns()), "holding")
	holdCPU, _ := loadgen.ProcCPU(cfg.serverPID)
	holdStart := time.Now()
	time.Sleep(cfg.duration)
	if c, err := loadgen.ProcCPU(cfg.serverPID); err == nil && cfg.serverPID > 0 {
		r.ServerCPUHolding = (c - holdCPU).Seconds() / time.Since(holdStart).Seconds()
	}
	r.Seconds = time.Since(start).Seconds()
	r.Held = t.openConns()
	r.Lost = t.lostN.Load()
	t.counting.Store(false)
	cpu.stop(r, 0)
	pr.done()
	t.fillResult(r)
	r.ServerRSSFrom, r.ServerRSSAtN = rssFrom, rssN
	if d := float64(cfg.conns - from); d > 0 {
		r.ServerBytesPerConn = float64(rssN-rssFrom) / d
		r.ClientBytesPerConn = float64(cliN-cliFrom) / d
	}
	if r.Held < cfg.conns {
		return r, fmt.Errorf("%d of %d connections still open at the end", r.Held, cfg.conns)
	}
	return r, nil
}
