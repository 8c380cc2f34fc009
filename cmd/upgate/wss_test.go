package main

// Real clients over wss:// against the binary, with a certificate of a
// test CA written to a temporary directory: gorilla/websocket,
// coder/websocket, gobwas/ws, node's ws and headless Chromium. Each
// trusts the CA (Chromium the certificate's key, as it takes no CA from a
// flag), echoes messages and closes with 1000.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	gws "github.com/gorilla/websocket"

	"github.com/upgate/upgate/internal/testcert"
)

// wssProc is the binary serving wss:// on a TLS listener.
type wssProc struct {
	*upgateProc
	tlsAddr string // host:port of the TLS listener
	ca      *testcert.CA
	leaf    *testcert.Cert
	caFile  string // the CA's certificate, PEM
}

// clientConfig trusts the test CA alone.
func (p *wssProc) clientConfig() *tls.Config { return &tls.Config{RootCAs: p.ca.Pool()} }

// wssURL returns the wss:// URL of path on the TLS listener.
func (p *wssProc) wssURL(path string) string { return "wss://" + p.tlsAddr + path }

// startWSS starts the binary with a TLS listener on a loopback port it
// picks, serving a certificate for localhost and 127.0.0.1 signed by a CA
// made for the test, then args, and waits until the TLS listener is
// announced. The process is stopped when the test ends.
func startWSS(t *testing.T, args ...string) *wssProc {
	t.Helper()
	ca, leaf := testcert.Localhost(t)
	dir := t.TempDir()
	certFile, keyFile := leaf.WriteFiles(t, dir, "server")
	p := &wssProc{ca: ca, leaf: leaf, caFile: ca.WriteFile(t, dir, "ca.pem")}
	all := append([]string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-format", "json",
		"--tls-listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile}, args...)
	u := &upgateProc{t: t, stderr: newSink(), stdout: newSink(), exited: make(chan struct{})}
	u.cmd = exec.Command(upgateBin, all...)
	u.cmd.Env = childEnv()
	u.cmd.Stdout = u.stdout
	u.cmd.Stderr = u.stderr
	if err := u.cmd.Start(); err != nil {
		t.Fatalf("start upgate: %v", err)
	}
	go func() {
		u.cmd.Wait()
		u.state = u.cmd.ProcessState
		close(u.exited)
	}()
	t.Cleanup(u.stop)
	p.upgateProc = u

	deadline := time.After(20 * time.Second)
	for {
		lines, changed := u.stderr.snapshot()
		for _, l := range lines {
			rec := logRecord(l)
			switch {
			case rec["msg"] == "public listener":
				u.addr = rec["addr"]
			case rec["msg"] == "admin listener":
				u.admin = rec["addr"]
			}
			if a := tlsListenerAddr(rec); a != "" {
				p.tlsAddr = a
			}
		}
		if p.tlsAddr != "" {
			return p
		}
		select {
		case <-changed:
		case <-u.exited:
			t.Fatalf("upgate %s exited before serving wss:// (%v):\n%s", strings.Join(all, " "), u.state, u.stderr)
		case <-deadline:
			t.Fatalf("upgate %s did not announce a TLS listener within 20s:\n%s", strings.Join(all, " "), u.stderr)
		}
	}
}

// tlsListenerAddr returns the address of the TLS listener if the log
// record announces it: a wss:// URL among its values, or an address in a
// record or attribute that speaks of TLS. "" otherwise.
func tlsListenerAddr(rec map[string]string) string {
	for _, v := range rec {
		for _, f := range strings.Fields(v) {
			if u, err := url.Parse(f); err == nil && u.Scheme == "wss" && u.Port() != "" && u.Port() != "0" {
				return u.Host
			}
		}
	}
	tlsRecord := strings.Contains(strings.ToLower(rec["msg"]), "tls")
	for k, v := range rec {
		k = strings.ToLower(k)
		if !strings.Contains(k, "addr") || (!tlsRecord && !strings.Contains(k, "tls")) {
			continue
		}
		if _, port, err := net.SplitHostPort(v); err == nil && port != "0" && port != "" {
			return v
		}
	}
	return ""
}

// wssSizes are the message sizes each client echoes: around the 7-bit and
// 16-bit length encodings, and over one TLS record (16 KiB) and several.
var wssSizes = []int{0, 1, 125, 126, 16 << 10, 65535, 65536, 200_000}

func TestWSSGorilla(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"beside-plain", nil},
		{"tls-only", []string{"--listen", "off"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startWSS(t, c.args...)
			d := gws.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: p.clientConfig()}
			conn, resp, err := d.Dial(p.wssURL("/echo"), nil)
			if err != nil {
				t.Fatalf("dial %s: %v", p.wssURL("/echo"), err)
			}
			resp.Body.Close()
			defer conn.Close()
			if tc, ok := conn.NetConn().(*tls.Conn); !ok || !tc.ConnectionState().HandshakeComplete {
				t.Fatalf("the connection is not TLS: %T", conn.NetConn())
			}
			for i, n := range wssSizes {
				for _, typ := range []int{gws.TextMessage, gws.BinaryMessage} {
					msg := payload(n, byte(i))
					if err := conn.WriteMessage(typ, msg); err != nil {
						t.Fatalf("write %d bytes: %v", n, err)
					}
					gotTyp, got := readGorilla(t, conn)
					if gotTyp != typ || !bytes.Equal(got, msg) {
						t.Fatalf("echo of %d bytes (type %d): got %d bytes of type %d", n, typ, len(got), gotTyp)
					}
				}
			}
			conn.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
			if code := closeCode(t, conn, 5*time.Second); code != gws.CloseNormalClosure {
				t.Errorf("close code %d, want 1000", code)
			}
			if c.args != nil && p.addr != "" && p.addr != "off" && p.addr != p.tlsAddr {
				// The plain listener is off: nothing answers on it.
				if conn, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
					conn.Close()
					t.Errorf("--listen off: the plain listener %s still accepts connections", p.addr)
				}
			}
		})
	}
}

func TestWSSCoder(t *testing.T) {
	p := startWSS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: p.clientConfig()}}
	defer client.CloseIdleConnections()
	c, _, err := cws.Dial(ctx, p.wssURL("/echo"), &cws.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	coderEcho(ctx, t, c, wssSizes)
}

func TestWSSGobwas(t *testing.T) {
	p := startWSS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := ws.Dialer{TLSConfig: p.clientConfig(), Timeout: 5 * time.Second}
	conn, br, _, err := d.Dial(ctx, p.wssURL("/echo"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if br != nil {
		t.Fatalf("%d bytes behind the 101; want none before the first message", br.Buffered())
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	for i, n := range wssSizes {
		for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
			msg := payload(n, byte(i))
			if err := wsutil.WriteClientMessage(conn, op, msg); err != nil {
				t.Fatalf("write %d bytes: %v", n, err)
			}
			got, gotOp, err := wsutil.ReadServerData(conn)
			if err != nil {
				t.Fatalf("read echo of %d bytes: %v", n, err)
			}
			if gotOp != op || !bytes.Equal(got, msg) {
				t.Fatalf("echo of %d bytes (op %v): got %d bytes (op %v)", n, op, len(got), gotOp)
			}
		}
	}
	body := ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")
	if err := ws.WriteFrame(conn, ws.MaskFrameInPlace(ws.NewCloseFrame(body))); err != nil {
		t.Fatalf("write close: %v", err)
	}
	f, err := ws.ReadFrame(conn)
	if err != nil {
		t.Fatalf("read the close reply: %v", err)
	}
	if code, _ := ws.ParseCloseFrameData(f.Payload); f.Header.OpCode != ws.OpClose || code != ws.StatusNormalClosure {
		t.Fatalf("got op %v, code %d; want close 1000", f.Header.OpCode, code)
	}
	// Then the server ends the connection.
	if n, err := conn.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("after the close: got %d bytes, %v; want EOF", n, err)
	}
}

func TestWSSNodeClient(t *testing.T) {
	node, script := nodeClient(t)
	p := startWSS(t)
	for i, args := range [][]string{
		{"echo", p.wssURL("/echo"), "2", "0", "1", "125", "126", "16384", "65535", "65536", "300000"},
		{"frag", p.wssURL("/echo")},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := nodeCommand(ctx, node, script, args...)
		// Node trusts the test CA besides its own.
		cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+p.caFile)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), `"ok":true`) || !strings.Contains(string(out), `"closeCode":1000`) {
			t.Errorf("#%d: node ws-client.mjs %s: %v\n%s", i, strings.Join(args, " "), err, out)
		}
	}
}

// TestWSSChromium loads the browser test's page with a wss:// URL: Chromium
// trusts the server's certificate by the hash of its key.
func TestWSSChromium(t *testing.T) {
	chromium := findChromium(t)
	p := startWSS(t)
	run := runChromium(t, chromium, p.wssURL("/echo"),
		"--ignore-certificate-errors-spki-list="+p.leaf.SPKIHash())
	res := run.result(t)
	if !res.OK || res.CloseCode != 1000 || res.Messages != 4 {
		t.Errorf("the page: got %s; want ok, 4 echoes, close 1000", run.raw)
	}
	if res.Extensions != pmdAnswer {
		t.Errorf("ws.extensions = %q, want %q (permessage-deflate over wss:// as over ws://)", res.Extensions, pmdAnswer)
	}
	run.checkDOM(t)
	t.Logf("chromium over wss: %s", run.raw)
}
