package main

import (
	"crypto/tls"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/upgate/upgate/internal/testcert"
)

// tlsFiles makes a CA and a certificate for localhost and 127.0.0.1 in a
// temporary directory.
func tlsFiles(t *testing.T) (ca *testcert.CA, dir, cert, key string) {
	t.Helper()
	ca = testcert.NewCA(t, "upgate e2e CA")
	dir = t.TempDir()
	cert, key = ca.WritePair(t, dir, "server", testcert.LocalhostLeaf())
	return ca, dir, cert, key
}

// wssDial opens a WebSocket over TLS to the binary's TLS listener.
func wssDial(t *testing.T, p *upgateProc, ca *testcert.CA, path string) *gws.Conn {
	t.Helper()
	d := gws.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	c, resp, err := d.Dial("wss://"+p.tls+path, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatalf("dial wss://%s%s: %v", p.tls, path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serial returns the serial number of the certificate c got.
func serial(c *gws.Conn) string {
	return c.NetConn().(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func echoGorilla(t *testing.T, c *gws.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(gws.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if _, got := readGorilla(t, c); string(got) != msg {
		t.Fatalf("echo: got %q; want %q", got, msg)
	}
}

// TestTLSOnlyServe runs the binary with the plain listener off and the TLS
// listener on a port of its choice: wss:// echoes, https:// answers the
// health check, and the metrics count the handshakes.
func TestTLSOnlyServe(t *testing.T) {
	ca, _, cert, key := tlsFiles(t)
	p := startUpgate(t, nil, "--listen", "off", "--tls-listen", "127.0.0.1:0",
		"--tls-cert", cert, "--tls-key", key)
	if p.addr != "off" || p.tls == "" {
		t.Fatalf("announced public %q, TLS %q; want off and an address", p.addr, p.tls)
	}
	echoGorilla(t, wssDial(t, p, ca, "/echo"), "over TLS")
	client := &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := client.Get("https://" + p.tls + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET https /healthz: %d", resp.StatusCode)
	}
	m := p.metrics(t)
	if n := sum(m, "upgate_tls_handshakes_total"); n != 2 {
		t.Errorf("upgate_tls_handshakes_total: got %v; want 2", n)
	}
	if n := sum(m, "upgate_tcp_connections_total", `listener="plain"`); n != 0 {
		t.Errorf("plain connections: got %v; want none", n)
	}
	if n := sum(m, "upgate_tls_certificate_expiry_seconds", `index="0"`); n < 3600 {
		t.Errorf("certificate expiry: got %v seconds; want about a day", n)
	}
}

// TestTLSReloadOnSIGHUP rewrites the certificate files and sends SIGHUP: a
// new connection gets the new certificate, one opened before still echoes;
// a bad file on the next SIGHUP keeps the certificate served, and the log
// says why.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	ca, dir, cert, key := tlsFiles(t)
	p := startUpgate(t, nil, "--tls-listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
		"--tls-reload-interval", "-1s")
	old := wssDial(t, p, ca, "/echo")
	before := serial(old)

	ca.WritePair(t, dir, "server", testcert.LocalhostLeaf())
	p.signal(syscall.SIGHUP)
	waitLog(t, p, "SIGHUP: TLS certificates reloaded", 10*time.Second)
	after := serial(wssDial(t, p, ca, "/echo"))
	if after == before {
		t.Fatalf("after SIGHUP: got serial %s again; want the new certificate", after)
	}
	echoGorilla(t, old, "opened before")

	testcert.Write(t, dir, "server.pem", []byte("not PEM\n"))
	p.signal(syscall.SIGHUP)
	rec := waitLog(t, p, "SIGHUP: TLS certificates not reloaded; the previous ones are still served", 10*time.Second)
	if !strings.Contains(rec["err"], "server.pem") {
		t.Errorf("the failure's err %q does not name the file", rec["err"])
	}
	if s := serial(wssDial(t, p, ca, "/echo")); s != after {
		t.Fatalf("after a failed reload: got serial %s; want %s still", s, after)
	}
	m := p.metrics(t)
	if ok, failed := sum(m, "upgate_tls_certificate_reloads_total", `result="ok"`),
		sum(m, "upgate_tls_certificate_reloads_total", `result="failed"`); ok != 1 || failed != 1 {
		t.Errorf("reloads: got %v ok, %v failed; want 1, 1", ok, failed)
	}
	// The plain listener serves beside it, and the process is still up.
	echoGorilla(t, mustGorilla(t, p.wsURL("/echo")), "in the clear")
}
