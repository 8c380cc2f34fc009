package main

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startWSS serves a gorilla echo over TLS 1.3 with the certificate that
// certCmd wrote in dir, and returns its address.
func startWSS(t *testing.T, dir string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(t, ln, websocket.Upgrader{})
	return ln.Addr().(*net.TCPAddr).String()
}

func tlsTestConfig(dir, addr, scenario, curves string) *config {
	return &config{
		scenario: scenario, server: "test", addr: addr, path: "/echo",
		duration: 300 * time.Millisecond, warmup: 100 * time.Millisecond, settle: 50 * time.Millisecond,
		concurrency: 4, sources: 4, verifyAccept: true, closeMode: "rst", hsTimeout: 5 * time.Second,
		tls: true, tlsCA: filepath.Join(dir, "cert.pem"), tlsCurves: curves,
	}
}

func TestTLSScenarios(t *testing.T) {
	dir := t.TempDir()
	if err := certCmd([]string{"-o", dir}); err != nil {
		t.Fatal(err)
	}
	addr := startWSS(t, dir)
	pr := newProgress(false)
	for i, tc := range []struct {
		curves, group string
	}{{"x25519", "X25519"}, {"default", "X25519MLKEM768"}} {
		r, err := runTLSHandshake(tlsTestConfig(dir, addr, "handshake", tc.curves), pr)
		if err != nil {
			t.Fatalf("#%d: handshake: %v", i, err)
		}
		if r.Scenario != "tls-handshake" || r.Handshakes == 0 || r.Failed != 0 || r.Refused != 0 {
			t.Errorf("#%d: got %s, %d handshakes, %d failed, %d refused (%v); want tls-handshake, some, none failed",
				i, r.Scenario, r.Handshakes, r.Failed, r.Refused, r.Errors)
		}
		if r.TLS == nil || r.TLS.Group != tc.group || r.TLS.Version != "TLS 1.3" || r.TLS.Resumed != 0 || !r.TLS.Verified {
			t.Errorf("#%d: got TLS %+v; want TLS 1.3, group %s, verified, no resumption", i, r.TLS, tc.group)
		}
	}

	cfg := tlsTestConfig(dir, addr, "echo", "default")
	cfg.conns, cfg.size = 4, 128
	r, err := runTLSEcho(cfg, pr)
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	if r.Messages == 0 || r.Failed != 0 || r.Lost != 0 {
		t.Errorf("echo: got %d messages, %d failed, %d lost (%v); want some, none failed or lost", r.Messages, r.Failed, r.Lost, r.Errors)
	}

	cfg = tlsTestConfig(dir, addr, "hold", "x25519")
	cfg.conns, cfg.holdFrom, cfg.duration = 40, 10, 100*time.Millisecond
	r, err = runTLSHold(cfg, pr)
	if err != nil {
		t.Fatalf("hold: %v", err)
	}
	if r.Scenario != "tls-hold" || r.Held != 40 || r.Lost != 0 {
		t.Errorf("hold: got %s, %d held, %d lost; want tls-hold, 40, 0", r.Scenario, r.Held, r.Lost)
	}
}
