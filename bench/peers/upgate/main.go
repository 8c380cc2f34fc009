// Command upgate is the benchmark's server on upgate's own event loop
// (package loop) with the smallest handler: every WebSocket path echoes,
// except /ws/{topic} (subscribe to a topic) and /pub/{topic} (every message
// sent on it goes to the topic's subscribers, encoded once and shared, and
// compressed once for those that negotiated permessage-deflate).
// It stands in for cmd/upgate where the binary is not available, and it
// exposes the loop's kernel options as flags for the kernel-lever runs.
// With -tls-cert and -tls-key the loop's listener speaks TLS (wss://,
// loop.Options.TLS, TLS 1.3 only): the benchmark's TLS scenarios run upgate
// this way until cmd/upgate serves --tls-listen.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/loop/frame"
)

// sub marks a subscriber or a publisher of a topic.
type sub struct {
	topic string
	pub   bool
}

type handler struct {
	mu     sync.Mutex
	topics map[string]map[loop.Conn]struct{}
	zpool  deflate.Pool // compressors of the publishes
}

func (h *handler) OnRequest(r *loop.Request, d *loop.Decision) {
	if !r.WebSocket {
		d.RequireUpgrade()
		return
	}
	path := string(r.Head.Path())
	switch {
	case strings.HasPrefix(path, "/ws/"):
		r.Conn.SetContext(&sub{topic: path[len("/ws/"):]})
	case strings.HasPrefix(path, "/pub/"):
		r.Conn.SetContext(&sub{topic: path[len("/pub/"):], pub: true})
	}
	d.Upgrade(nil, nil, 0)
	// permessage-deflate as the binary's routes negotiate it by default:
	// no context takeover, level 1, messages of 128 bytes or more.
	it := r.Head.Extensions()
	p, ok, err := deflate.Negotiate(&it, deflate.Config{})
	switch {
	case err != nil:
		d.Reject(400, "Malformed Sec-WebSocket-Extensions.")
	case ok:
		d.Deflate(p, 1, 128)
	}
}

func (h *handler) OnOpen(c loop.Conn) {
	s, ok := c.Context().(*sub)
	if !ok || s.pub {
		return
	}
	h.mu.Lock()
	m := h.topics[s.topic]
	if m == nil {
		m = map[loop.Conn]struct{}{}
		h.topics[s.topic] = m
	}
	m[c] = struct{}{}
	h.mu.Unlock()
}

func (h *handler) OnMessage(c loop.Conn, op ws.OpCode, payload []byte) {
	s, ok := c.Context().(*sub)
	if !ok {
		_ = c.Write(op, payload)
		return
	}
	if !s.pub {
		return
	}
	f := frame.AppendFrame(nil, op, true, payload)
	// Compressed frames, one per (level, window bits) the subscribers
	// take, each compressed once and shared, as the gateway does.
	var zf map[[2]int][]byte
	h.mu.Lock()
	for sc := range h.topics[s.topic] {
		level, bits, ok := sc.Compresses(op, len(payload))
		if !ok {
			_ = sc.SendFrame(f)
			continue
		}
		k := [2]int{level, bits}
		z, done := zf[k]
		if !done {
			z = h.compressedFrame(op, payload, level, bits)
			if zf == nil {
				zf = map[[2]int][]byte{}
			}
			zf[k] = z
		}
		if z == nil {
			z = f
		}
		_ = sc.SendFrame(z)
	}
	h.mu.Unlock()
}

// compressedFrame returns the frame of payload compressed at level with
// 2^bits bytes of window, RSV1 set, or nil if it cannot compress.
func (h *handler) compressedFrame(op ws.OpCode, payload []byte, level, bits int) []byte {
	c, err := h.zpool.Get(level, bits)
	if err != nil {
		return nil
	}
	defer h.zpool.Put(c)
	z, err := c.Compress(nil, payload)
	if err != nil {
		return nil
	}
	f := frame.AppendFrame(nil, op, true, z)
	f[0] |= 0x40 // RSV1: compressed (RFC 7692 §6)
	return f
}

func (h *handler) OnClose(c loop.Conn, _ ws.StatusCode, _ error) {
	if s, ok := c.Context().(*sub); ok && !s.pub {
		h.mu.Lock()
		delete(h.topics[s.topic], c)
		h.mu.Unlock()
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	loops := flag.Int("loops", 1, "event loops")
	reuse := flag.Bool("reuseport", false, "one SO_REUSEPORT listener per loop")
	deferAccept := flag.Duration("defer-accept", 0, "TCP_DEFER_ACCEPT (0: off)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	memProfile := flag.String("memprofile", "", "write a heap profile here at SIGTERM")
	traceFile := flag.String("trace", "", "write an execution trace here until SIGTERM")
	certFile := flag.String("tls-cert", "", "serve TLS with this certificate (PEM)")
	keyFile := flag.String("tls-key", "", "the certificate's private key (PEM)")
	flag.Parse()

	var tlsConf *tls.Config
	if *certFile != "" || *keyFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	}

	if *memProfile != "" {
		runtime.MemProfileRate = 1 // every allocation: the profile explains the RSS slope
	}
	h := &handler{topics: map[string]map[loop.Conn]struct{}{}}
	srv, err := loop.New(h, loop.Options{
		Addr:        *addr,
		NumLoops:    *loops,
		ReusePort:   *reuse,
		DeferAccept: *deferAccept,
		TLS:         tlsConf,
	})
	if err != nil {
		log.Fatal(err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			log.Fatal(err)
		}
		if err := trace.Start(f); err != nil {
			log.Fatal(err)
		}
		defer trace.Stop()
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if *memProfile != "" {
		runtime.GC()
		if f, err := os.Create(*memProfile); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
