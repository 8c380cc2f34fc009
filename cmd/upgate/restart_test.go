package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// serverCloses sends req on a new connection to addr, checks that the
// answer starts with want and that the server then ends the connection,
// and only then closes the client's side: the server closed first, so the
// connection's TIME_WAIT is on the server's side.
func serverCloses(t testing.TB, addr, req, want string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("%s: reading until the server closes: %v (got %q)", addr, err, b)
	}
	if !strings.Contains(string(b), want) {
		t.Fatalf("%s: got %q; want it to contain %q", addr, b, want)
	}
}

// TestRestartOnSamePorts stops upgate right after each of its listeners
// (public, admin, embedded NATS) closed connections itself, and starts it
// again at once on the same ports: the connections in TIME_WAIT must not
// keep it from binding them.
func TestRestartOnSamePorts(t *testing.T) {
	pub, admin, nats := freeAddr(t), freeAddr(t), freeAddr(t)
	args := []string{"--listen", pub, "--admin", admin, "--nats", "embedded", "--nats-listen", nats}
	for run := range 2 {
		p := startUpgate(t, nil, args...)
		for range 3 {
			serverCloses(t, pub, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 ")
			serverCloses(t, admin, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 ")
			serverCloses(t, nats, "NOT A NATS COMMAND\r\n", "-ERR")
		}
		p.stop()
		if code := p.state.ExitCode(); code != exitOK {
			t.Fatalf("run %d: exit %d, want 0:\n%s", run, code, p.stderr)
		}
	}
}

// TestListenErrorNamesAddress checks that a listener that cannot bind says
// which address it tried.
func TestListenErrorNamesAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--listen", taken, "--admin", "off"}, "gateway: public listener: listen tcp " + taken + ": bind: address already in use"},
		{[]string{"--listen", "127.0.0.1:0", "--admin", taken}, "gateway: admin listener: listen tcp " + taken + ": bind: address already in use"},
		{[]string{"--listen", "127.0.0.1:0", "--admin", "off", "--nats", "embedded", "--nats-listen", taken}, "gateway: natsembed: listen tcp " + taken + ": bind: address already in use"},
	}
	for i, c := range cases {
		_, errOut, code := runUpgate(t, nil, append(c.args, "--log-format", "json")...)
		if code != exitRuntime {
			t.Errorf("#%d: got exit %d; want %d\n%s", i, code, exitRuntime, errOut)
		}
		if !strings.Contains(errOut, fmt.Sprintf("%q", c.want)) {
			t.Errorf("#%d: got\n%s\nwant an error %q", i, errOut, c.want)
		}
	}
}
