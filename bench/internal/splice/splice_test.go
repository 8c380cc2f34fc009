package splice

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upgate/upgate/internal/testutil"
)

// echoUpstream echoes what it reads and answers the client's FIN with
// "bye" and its own FIN.
func echoUpstream(t *testing.T) string {
	return testutil.EchoTCP(t, func(int64) string { return "bye" })
}

func start(t *testing.T, opts Options) (string, *Server) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: got %v; want ErrClosed", err)
		}
	})
	return ln.Addr().String(), s
}

// request sends req to addr and returns the response and the connection.
func request(t *testing.T, addr, req string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", req, err)
	}
	return resp, c, br
}

const upgrade = "GET /tunnel HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"

func TestTunnel(t *testing.T) {
	addr, s := start(t, Options{Upstream: echoUpstream(t)})
	resp, c, br := request(t, addr, upgrade+"early ")
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "tcp" {
		t.Fatalf("got %d %q; want 101 tcp", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	_, _ = io.WriteString(c, "late")
	_ = c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(br)
	if err != nil || string(got) != "early latebye" {
		t.Fatalf("through the tunnel: got %q, %v; want the echo, then the upstream's last words", got, err)
	}
	testutil.Eventually(t, "the tunnel ends", func() bool { return s.Stats().Open == 0 })
	if st := s.Stats(); st.Tunnels != 1 || st.Open != 0 || st.Up != 10 || st.Down != 13 {
		t.Errorf("stats: got %+v; want 1 tunnel, closed, 10 bytes up, 13 down", st)
	}
}

func TestRefused(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	addr, _ := start(t, Options{Upstream: echoUpstream(t), MaxHead: 256, HandshakeTimeout: 200 * time.Millisecond})
	down, _ := start(t, Options{Upstream: deadAddr})
	for i, tc := range []struct {
		addr, req string
		want      int
	}{
		{addr, "GET /tunnel HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 400},
		{addr, "POST /tunnel HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", 400},
		{addr, "GET /tunnel HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", 300) + "\r\n\r\n", 431},
		{addr, "GET /tunnel HTTP/1.1\r\nHost: h\r\n", 408},
		{down, upgrade, 502},
	} {
		resp, _, _ := request(t, tc.addr, tc.req)
		if resp.StatusCode != tc.want {
			t.Errorf("#%d: got %d; want %d", i, resp.StatusCode, tc.want)
		}
	}
	if _, err := New(Options{}); !errors.Is(err, ErrNoUpstream) {
		t.Errorf("New without upstream: got %v; want ErrNoUpstream", err)
	}
}
