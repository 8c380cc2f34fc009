package main

import (
	"errors"
	"fmt"
	"time"
)

func runTunnel(cfg *config, pr *progress) (*Result, error) {
	e, err := newTunnelEngine(cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	r := newResult(cfg)
	// Setup latency: tunnels opened one at a time, each closed once its
	// 101 is in, and the upstream's side gone before the next.
	pr.phase(fmt.Sprintf("tunnel setups %s", cfg.server), int64(cfg.setups))
	e.counting, e.expectEnds = true, true
	for i := range cfg.setups {
		if !e.dial() {
			continue
		}
		if err := e.until(func() bool { return e.pending == 0 }, cfg.hsTimeout+time.Second, "tunnel setup"); err != nil {
			return nil, err
		}
		e.closeAll()
		if err := e.until(func() bool { return e.ups == 0 }, 10*time.Second, "upstream side of a setup closed"); err != nil {
			return nil, err
		}
		pr.set(int64(i+1), "")
	}
	e.counting, e.expectEnds = false, false
	if e.failed > 0 {
		e.fillTunnel(r)
		return r, fmt.Errorf("%d of %d tunnel setups failed (%v)", e.failed, cfg.setups, e.errs)
	}
	// Open the tunnels, at most -c at a time.
	pr.phase(fmt.Sprintf("tunnels %s", cfg.server), int64(cfg.conns))
	deadline := e.now() + int64(time.Minute)
	for e.clients < cfg.conns || e.ups < cfg.conns {
		if e.failed > 0 || e.now() > deadline {
			e.fillTunnel(r)
			return r, fmt.Errorf("%d of %d tunnels open, %d upstream connections (failed %d: %v)",
				e.clients, cfg.conns, e.ups, e.failed, e.errs)
		}
		for e.pending < cfg.concurrency && e.clients+e.pending < cfg.conns {
			if !e.dial() {
				break
			}
		}
		if err := e.poll(10); err != nil {
			return nil, err
		}
		e.expire()
		pr.set(int64(e.clients), "")
	}
	e.start()
	if cfg.warmup > 0 {
		pr.phase("warm-up", int64(cfg.warmup/time.Millisecond))
		start := e.now()
		if err := e.run(start+int64(cfg.warmup), func(now int64) { pr.set((now-start)/1e6, "") }); err != nil {
			return nil, err
		}
	}
	pr.phase(fmt.Sprintf("tunnel %s %s", cfg.dir, cfg.server), int64(cfg.duration/time.Millisecond))
	e.counting = true
	cpu := startCPU(cfg.serverPID)
	start := e.now()
	err = e.run(start+int64(cfg.duration), func(now int64) {
		el := float64(now-start) / 1e9
		pr.set(int64(el*1e3), fmt.Sprintf("%.0f MiB/s", float64(e.received)/(1<<20)/el))
	})
	elapsed := float64(e.now()-start) / 1e9
	e.counting = false
	cpu.stop(r, 0)
	pr.done()
	if err != nil {
		return nil, err
	}
	r.Seconds = elapsed
	e.fillTunnel(r)
	ti := r.Tunnel
	ti.Bytes, ti.SentBytes = e.received, e.sent
	mib := float64(e.received) / (1 << 20)
	ti.MiBPerSec = mib / elapsed
	if mib > 0 {
		ti.ServerCPUPerMiBUs = r.ServerCPUSeconds * 1e6 / mib
		ti.ServerUserPerMiBUs = r.ServerUserSeconds * 1e6 / mib
		ti.ClientCPUPerMiBUs = r.ClientCPUSeconds * 1e6 / mib
	}
	r.BytesPerSec = float64(e.received) / elapsed
	switch {
	case e.lostN > 0 || e.failed > 0:
		return r, fmt.Errorf("%d tunnels lost, %d failures (%v)", e.lostN, e.failed, e.errs)
	case e.received == 0:
		return r, errors.New("no byte went through")
	}
	return r, nil
}

// run lets the data flow until the engine clock reaches until.
func (e *tunnelEngine) run(until int64, tick func(now int64)) error {
	next := e.now() + tickEvery
	for {
		now := e.now()
		if now >= until {
			return nil
		}
		if e.lostN > 0 {
			return fmt.Errorf("tunnels lost: %v", e.errs)
		}
		if err := e.poll(int(min((until-now)/1e6+1, 10))); err != nil {
			return err
		}
		if now = e.now(); now >= next {
			next = now + tickEvery
			if tick != nil {
				tick(now)
			}
		}
	}
}

// fillTunnel records the scenario's settings and counters in r.
func (e *tunnelEngine) fillTunnel(r *Result) {
	r.Tunnel = &TunnelInfo{Direction: e.dir, Verified: e.verify, Upstream: "in the client's process (sink and source on its core)"}
	r.Handshakes, r.Failed, r.Lost = e.setups, e.failed, e.lostN
	if len(e.errs) > 0 {
		r.Errors = e.errs
	}
	r.HandshakeLatency = summarize(e.hist, false)
}
