//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/testcert"
	"github.com/upgate/upgate/internal/wstest"
)

// The autobahnN_test.go files port the case groups of the Autobahn|Testsuite
// fuzzingclient to raw-socket Go tests, group by group, with the case
// numbers of the suite as subtest names. Each case opens its own connection.
// Each group runs over plain TCP (TestAutobahnN) and over TLS
// (TestTLSBehaviour): the cases see only a net.Conn.

// abCase is one case: run sends the frames and checks the server's answers.
type abCase struct {
	id  string
	run func(w *wsClient)
}

func runCases(t *testing.T, s abServer, cases []abCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			c.run(s.dialWS(t))
		})
	}
}

// wire is how a test reaches its server: plain TCP, or TLS with a
// certificate for 127.0.0.1 made for the server.
type wire struct{ tls bool }

var (
	overTCP = wire{}
	overTLS = wire{tls: true}
)

// abServer is a server under test and the client configuration that
// reaches it: nil over plain TCP.
type abServer struct {
	*Server
	cli *tls.Config
}

// start starts a server with h and o over wr for the test.
func (wr wire) start(t testing.TB, h Handler, o Options) abServer {
	t.Helper()
	if !wr.tls {
		return abServer{Server: startServer(t, h, o)}
	}
	ca, leaf := testcert.Localhost(t)
	o.TLS = leaf.ServerConfig()
	return abServer{Server: startServer(t, h, o), cli: ca.ClientConfig("127.0.0.1")}
}

// startEcho starts the echo server of testHandler with testOptions.
func (wr wire) startEcho(t testing.TB) abServer {
	t.Helper()
	return wr.start(t, newTestHandler(), testOptions())
}

// dialRaw connects to s (and completes the TLS handshake) without a
// WebSocket handshake. Every read and write has testTimeout from now as
// its deadline; the connection is closed when the test ends.
func (s abServer) dialRaw(t testing.TB) *wsClient {
	t.Helper()
	if s.cli == nil {
		return dialRaw(t, s.Server)
	}
	d := &net.Dialer{Timeout: testTimeout}
	c, err := tls.DialWithDialer(d, "tcp", s.Addr().String(), s.cli)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.NetConn().(*net.TCPConn).SetNoDelay(true)
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return &wsClient{wstest.NewClient(t, c)}
}

// dialWS connects to s and completes the handshake on /ws.
func (s abServer) dialWS(t testing.TB) *wsClient {
	t.Helper()
	w := s.dialRaw(t)
	w.Write(upgradeRequest("/ws"))
	w.ExpectSwitching()
	return w
}

// framewise writes each frame with its own write(2), pausing between them
// (pacing, so that the server reads the frames one by one).
func (w *wsClient) framewise(pause time.Duration, frames ...[]byte) {
	w.T.Helper()
	for i, f := range frames {
		if i > 0 {
			time.Sleep(pause)
		}
		w.Write(f)
	}
}

// chopped writes the frames as one byte stream in 1-byte writes.
func (w *wsClient) chopped(frames ...[]byte) {
	w.T.Helper()
	w.WriteChopped(bytes.Join(frames, nil), 1, 0)
}

// delivery is how a case sends its frames: all in one write, frame by frame
// with a pause, or one byte per write.
type delivery int

const (
	oneWrite delivery = iota
	frameWise
	oneByte
)

func (d delivery) String() string { return [...]string{"one-write", "frame-wise", "one-byte"}[d] }

func (w *wsClient) send(d delivery, frames ...[]byte) {
	w.T.Helper()
	switch d {
	case oneWrite:
		w.Write(frames...)
	case frameWise:
		w.framewise(10*time.Millisecond, frames...)
	case oneByte:
		w.chopped(frames...)
	}
}

func text(s string) []byte { return msg(ws.OpText, []byte(s)) }

func cont(fin bool, s string) []byte { return clientFrame(ws.OpContinuation, fin, 0, []byte(s)) }

func firstFrag(op ws.OpCode, s string) []byte { return clientFrame(op, false, 0, []byte(s)) }

func ping(s string) []byte { return msg(ws.OpPing, []byte(s)) }

func itoa(n int) string { return strconv.Itoa(n) }
