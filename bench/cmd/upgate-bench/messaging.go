package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

// echoHooks keep one message in flight per connection and check that every
// echoed byte comes back.
type echoHooks struct {
	e        *engine
	size     int
	messages int64
	bytes    int64
	rtt      *hdrhistogram.Histogram
	lostN    int64
}

// fillPayload writes message seq's bytes: a pattern that changes with every
// message, so that a stale, reordered or corrupted echo is caught.
func fillPayload(b []byte, seq uint64) {
	s := byte(seq*131 + 7)
	for i := range b {
		b[i] = s + byte(i)
	}
}

func (h *echoHooks) next(c *conn) {
	c.seq++
	c.sentAt = h.e.now()
	if h.e.dfl != nil {
		h.e.dfl.send(c)
		return
	}
	fillPayload(c.out, c.seq)
	h.e.send(c, loadgen.OpBinary, c.out)
}

func (h *echoHooks) opened(c *conn) {
	c.out = make([]byte, h.size)
	c.mask = [4]byte{byte(rand.Uint32()), byte(rand.Uint32()), byte(rand.Uint32()), byte(rand.Uint32())}
	h.next(c)
}

func (h *echoHooks) message(c *conn, op byte, payload []byte) {
	e := h.e
	why := ""
	if e.dfl != nil {
		why = e.dfl.check(c, op, payload)
	} else if !bytes.Equal(payload, c.out) {
		why = "echo mismatch"
	}
	if why != "" {
		if e.counting {
			e.errs[why]++
			e.failed++
		}
	} else if e.counting {
		h.messages++
		h.bytes += int64(len(c.out))
		_ = h.rtt.RecordValue(e.now() - c.sentAt)
	}
	h.next(c)
}

func (h *echoHooks) lost(*conn) { h.lostN++ }

// newEchoHooks returns echo hooks with the engine they drive (h.e).
func newEchoHooks(cfg *config) (*echoHooks, error) {
	h := &echoHooks{size: cfg.size, rtt: newHist()}
	e, err := newEngine(cfg, h)
	if err != nil {
		return nil, err
	}
	h.e = e
	return h, nil
}

func runEcho(cfg *config, pr *progress) (*Result, error) {
	h, err := newEchoHooks(cfg)
	if err != nil {
		return nil, err
	}
	e := h.e
	defer e.p.Close()
	defer e.closeAll()
	pr.phase("connect", int64(cfg.conns))
	if err := e.fillTo(e.keys, cfg.conns, cfg.concurrency, cfg.warmup, time.Minute, func(int64) {
		pr.set(int64(e.open), "")
	}); err != nil {
		// With -deflate, record why the server cannot run it.
		return declined(e, newResult(cfg), err)
	}
	r := newResult(cfg)
	label := "echo"
	if e.dfl != nil {
		label = "deflate-echo"
	}
	err = h.measure(cfg, pr, r, label)
	r.Failed, r.Errors = e.failed, e.errs
	if e.dfl != nil {
		e.dfl.finish(r, h.messages)
	}
	return r, err
}

// measure counts the echoes of h's engine for cfg.duration into r,
// labelled scenario in the progress.
func (h *echoHooks) measure(cfg *config, pr *progress, r *Result, scenario string) error {
	e := h.e
	pr.phase(fmt.Sprintf("%s %s", scenario, cfg.server), int64(cfg.duration/time.Millisecond))
	e.counting = true
	cpu := startCPU(cfg.serverPID)
	start := e.now()
	until := start + int64(cfg.duration)
	next := start + tickEvery
	for now := start; now < until; now = e.now() {
		if err := e.poll(int(min((until-now)/1e6+1, 10))); err != nil {
			return err
		}
		if now >= next {
			next = now + tickEvery
			el := now - start
			pr.set(el/1e6, fmt.Sprintf("%.0f msg/s", float64(h.messages)/(float64(el)/1e9)))
		}
	}
	elapsed := float64(e.now()-start) / 1e9
	e.counting = false
	cpu.stop(r, h.messages)
	pr.done()
	r.Seconds = elapsed
	r.Lost = h.lostN
	r.Messages = h.messages
	r.MessagesPerSec = float64(h.messages) / elapsed
	r.BytesPerSec = float64(h.bytes) / elapsed
	r.RTT = summarize(h.rtt, true)
	if h.messages == 0 {
		return fmt.Errorf("no message echoed")
	}
	return nil
}

// pubState tracks one published message across subscribers.
type pubState struct {
	seq   uint64
	count int
	max   int64
}

// broadcastHooks time every delivery of every published message.
type broadcastHooks struct {
	e         *engine
	subs      int
	size      int
	delivered int64
	complete  int64
	bad       int64
	ring      []pubState
	last, any *hdrhistogram.Histogram
	lostN     int64
}

// stampPayload writes seq and the send time as 32 hex digits, padded to size.
func stampPayload(dst []byte, seq uint64, at int64, size int) []byte {
	dst = fmt.Appendf(dst[:0], "%016x%016x", seq, at)
	for len(dst) < size {
		dst = append(dst, '.')
	}
	return dst
}

// payload writes the message published as seq at at: the stamp padded to
// -size, or with -deflate the stamp followed by JSON message seq (cycled).
func (h *broadcastHooks) payload(dst []byte, seq uint64, at int64) []byte {
	if d := h.e.dfl; d != nil {
		dst = stampPayload(dst, seq, at, 32)
		return append(dst, d.msgs[seq%uint64(len(d.msgs))]...)
	}
	return stampPayload(dst, seq, at, h.size)
}

func (h *broadcastHooks) opened(c *conn) {
	c.mask = [4]byte{byte(rand.Uint32()), byte(rand.Uint32()), byte(rand.Uint32()), byte(rand.Uint32())}
}

func (h *broadcastHooks) message(c *conn, op byte, p []byte) {
	if c.pub || !h.e.counting {
		return
	}
	d := h.e.dfl
	if d != nil {
		wire := int64(loadgen.FrameLen(len(p), false))
		var why string
		if p, why = d.inflate(c, op, p); why != "" {
			h.bad++
			h.e.errs[why]++
			return
		}
		d.recv += wire
	}
	if len(p) < 32 {
		h.bad++
		return
	}
	seq, err1 := strconv.ParseUint(string(p[:16]), 16, 64)
	at, err2 := strconv.ParseInt(string(p[16:32]), 16, 64)
	if err1 != nil || err2 != nil {
		h.bad++
		return
	}
	if d != nil && !bytes.Equal(p[32:], d.msgs[seq%uint64(len(d.msgs))]) {
		h.bad++
		h.e.errs["delivery mismatch"]++
		return
	}
	lat := h.e.now() - at
	h.delivered++
	_ = h.any.RecordValue(lat)
	st := &h.ring[seq%uint64(len(h.ring))]
	if st.seq != seq {
		*st = pubState{seq: seq}
	}
	st.count++
	st.max = max(st.max, lat)
	if st.count == h.subs {
		h.complete++
		_ = h.last.RecordValue(st.max)
	}
}

func (h *broadcastHooks) lost(*conn) { h.lostN++ }

func runBroadcast(cfg *config, pr *progress) (*Result, error) {
	h := &broadcastHooks{subs: cfg.conns, size: cfg.size, ring: make([]pubState, 1<<16), last: newHist(), any: newHist()}
	e, err := newEngine(cfg, h)
	if err != nil {
		return nil, err
	}
	h.e = e
	defer e.p.Close()
	defer e.closeAll()
	pr.phase("subscribe", int64(cfg.conns))
	first := cfg.conns
	if cfg.addr2 != "" {
		first = cfg.conns / 2
	}
	if err := e.fillTo(e.keys, first, cfg.concurrency, 0, time.Minute, func(int64) {
		pr.set(int64(e.open), "")
	}); err != nil {
		return declined(e, newResult(cfg), err)
	}
	if cfg.addr2 != "" {
		// The other half on the second node: a publish on the first one
		// reaches them through the fleet's bus.
		ring := loadgen.NewKeyRing(4096, cfg.addr2, cfg.path, e.dfl.headers()...)
		dst, err := loadgen.Sockaddr4(cfg.addr2)
		if err != nil {
			return nil, err
		}
		ring.Dst = dst
		if err := e.fillTo(ring, cfg.conns, cfg.concurrency, 0, time.Minute, func(int64) {
			pr.set(int64(e.open), "")
		}); err != nil {
			return nil, fmt.Errorf("second node: %w", err)
		}
	}
	var publish func(seq uint64) error
	var pubWire int64 // frame bytes published over the WebSocket
	var httpPub *httpPublisher
	if cfg.publishURL != "" {
		httpPub = newHTTPPublisher(cfg.publishURL, e, h.payload)
		defer httpPub.close()
		publish = httpPub.publish
	} else {
		// With -deflate the publisher offers the extension too: on a route
		// that also subscribes it, it is a subscriber like the others.
		ring := loadgen.NewKeyRing(16, cfg.addr, cfg.pubPath, e.dfl.headers()...)
		if err := e.fillTo(ring, cfg.conns+1, 1, 0, 10*time.Second, nil); err != nil {
			return nil, fmt.Errorf("publisher: %w", err)
		}
		var pub *conn
		for _, c := range e.conns {
			if c != nil && c.ring == ring {
				pub = c
			}
		}
		if pub == nil {
			return nil, fmt.Errorf("publisher did not connect")
		}
		pub.pub = true
		var buf []byte
		publish = func(seq uint64) error {
			if pub.state != stOpen {
				return fmt.Errorf("publisher connection lost")
			}
			buf = h.payload(buf, seq, e.now())
			pubWire += int64(loadgen.FrameLen(len(buf), true))
			e.send(pub, loadgen.OpText, buf)
			return nil
		}
	}
	if err := e.idle(cfg.warmup); err != nil {
		return nil, err
	}
	r := newResult(cfg)
	pr.phase(fmt.Sprintf("broadcast %s", cfg.server), int64(cfg.duration/time.Millisecond))
	e.counting = true
	cpu := startCPU(cfg.serverPID)
	start := e.now()
	until := start + int64(cfg.duration)
	interval := int64(float64(time.Second) / cfg.rate)
	nextPub, next := start, start+tickEvery
	var seq uint64
	grace := until + int64(time.Second)
	for now := start; now < grace; now = e.now() {
		for now < until && now >= nextPub {
			seq++
			if err := publish(seq); err != nil {
				return nil, err
			}
			nextPub += interval
		}
		if now >= until && h.complete >= int64(seq) {
			break
		}
		wait := max(min((nextPub-now)/1e6, 10), 0)
		if err := e.poll(int(wait)); err != nil {
			return nil, err
		}
		if now >= next {
			next = now + tickEvery
			el := now - start
			pr.set(min(el, int64(cfg.duration))/1e6, fmt.Sprintf("%.0f deliveries/s", float64(h.delivered)/(float64(el)/1e9)))
		}
	}
	elapsed := float64(until-start) / 1e9
	e.counting = false
	cpu.stop(r, h.delivered)
	pr.done()
	r.Seconds = elapsed
	r.Published = int64(seq)
	if httpPub != nil {
		r.Published -= httpPub.errors.Load()
		if n := httpPub.errors.Load(); n > 0 {
			e.errs["publish errors"] += n
		}
	}
	r.Delivered = h.delivered
	r.DeliveredPerSec = float64(h.delivered) / elapsed
	r.Incomplete = int64(seq) - h.complete
	r.Lost = h.lostN
	r.Failed, r.Errors = e.failed+h.bad, e.errs
	if h.bad > 0 {
		e.errs["malformed deliveries"] += h.bad
	}
	r.LastSubscriber = summarize(h.last, true)
	r.AnyDelivery = summarize(h.any, false)
	if d := e.dfl; d != nil {
		r.Messages = h.delivered
		d.finish(r, h.delivered)
		// Sent: per message published, not per delivery.
		d.info.SentWireBytes = 0
		if r.Published > 0 && httpPub == nil {
			d.info.SentWireBytes = float64(pubWire) / float64(r.Published)
		}
	}
	if h.delivered == 0 {
		return r, fmt.Errorf("no message delivered")
	}
	return r, nil
}

// httpPublisher posts messages to the gateway's admin API from its own
// goroutine, so that a slow answer never stalls the event loop.
type httpPublisher struct {
	url    string
	e      *engine
	mk     func(dst []byte, seq uint64, at int64) []byte
	ch     chan uint64
	wg     sync.WaitGroup
	errors atomic.Int64
	client http.Client
}

func newHTTPPublisher(url string, e *engine, mk func([]byte, uint64, int64) []byte) *httpPublisher {
	p := &httpPublisher{url: url, e: e, mk: mk, ch: make(chan uint64, 1024), client: http.Client{Timeout: 5 * time.Second}}
	p.wg.Add(1)
	go p.run()
	return p
}

func (p *httpPublisher) run() {
	defer p.wg.Done()
	var buf []byte
	for seq := range p.ch {
		buf = p.mk(buf, seq, p.e.now())
		resp, err := p.client.Post(p.url, "text/plain", bytes.NewReader(buf))
		if err != nil {
			p.errors.Add(1)
			continue
		}
		if resp.StatusCode/100 != 2 {
			p.errors.Add(1)
		}
		_ = resp.Body.Close()
	}
}

func (p *httpPublisher) publish(seq uint64) error {
	select {
	case p.ch <- seq:
	default:
		p.errors.Add(1)
	}
	return nil
}

func (p *httpPublisher) close() {
	close(p.ch)
	p.wg.Wait()
}
