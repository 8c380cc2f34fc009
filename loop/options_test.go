//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

func TestOptionsValidation(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("nil handler accepted")
	}
	bad := []Options{
		{Addr: "127.0.0.1:0", ReusePort: true, NumLoops: 2},
		{Addr: "tcp://127.0.0.1:0", ReusePort: true, Multicore: true},
		{Addr: "127.0.0.1:9000", ReusePort: true, NumLoops: 2, DeferAccept: time.Second},
		{TLS: &tls.Config{}, HandshakeTimeout: -1},
	}
	for _, o := range bad {
		if _, err := New(newTestHandler(), o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
	s, err := New(newTestHandler(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := s.opts
	if o.Addr != DefaultAddr || o.MaxMessage != DefaultMaxMessage || o.MaxOutbound != DefaultMaxOutbound ||
		o.HandshakeTimeout != DefaultHandshakeTimeout || o.IdleTimeout != DefaultIdleTimeout ||
		o.PingInterval != DefaultPingInterval || o.PongTimeout != DefaultPongTimeout ||
		o.CloseTimeout != DefaultCloseTimeout || o.DrainTimeout != DefaultDrainTimeout ||
		o.TimerResolution != DefaultTimerResolution || o.Head.MaxHeadBytes != 0 ||
		o.MaxTLSHandshakes != DefaultMaxTLSHandshakes {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if s.Addr() != nil || s.Shutdown(t.Context()) != ErrServerNotStarted {
		t.Fatal("unstarted server")
	}
}

// TestReusePort: one listener per loop on the same port.
func TestReusePort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	o := testOptions()
	o.Addr = "tcp://127.0.0.1:" + strconv.Itoa(port)
	o.ReusePort = true
	s := startServer(t, newTestHandler(), o)
	for i := range 20 {
		w := dialWS(t, s)
		w.Write(text(itoa(i)))
		w.ExpectMessage(ws.OpText, []byte(itoa(i)))
		w.CloseNormally()
	}
}
