//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/wstest"
	"github.com/upgate/upgate/loop/tlsrec"
)

// rawTap keeps every byte a client reads from its socket.
type rawTap struct {
	net.Conn
	mu sync.Mutex
	in []byte
}

func (r *rawTap) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.in = append(r.in, p[:n]...)
	r.mu.Unlock()
	return n, err
}

// serverSecret keeps the server's application traffic secret a client
// logs.
type serverSecret struct {
	mu     sync.Mutex
	secret []byte
}

func (s *serverSecret) Write(line []byte) (int, error) {
	f := strings.Fields(string(line))
	if len(f) == 3 && f[0] == "SERVER_TRAFFIC_SECRET_0" {
		b, _ := hex.DecodeString(f[2])
		s.mu.Lock()
		s.secret = b
		s.mu.Unlock()
	}
	return len(line), nil
}

// dialTapped opens a TLS 1.3 connection to s whose raw input and server
// secret the test can read.
func dialTapped(t *testing.T, s *Server, cli *tls.Config) (*tls.Conn, *rawTap, *serverSecret) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetDeadline(time.Now().Add(testTimeout))
	tap := &rawTap{Conn: raw}
	keys := &serverSecret{}
	cfg := cli.Clone()
	cfg.MinVersion = tls.VersionTLS13
	cfg.KeyLogWriter = keys
	c := tls.Client(tap, cfg)
	t.Cleanup(func() { _ = c.Close() })
	return c, tap, keys
}

// serverRecords opens the records of the server's application secret in
// what the client read, in order: (type, content) pairs.
func serverRecords(t *testing.T, c *tls.Conn, tap *rawTap, keys *serverSecret) [][2][]byte {
	t.Helper()
	var h tlsrec.Half
	keys.mu.Lock()
	err := h.Init(c.ConnectionState().CipherSuite, keys.secret)
	keys.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	tap.mu.Lock()
	stream := append([]byte(nil), tap.in...)
	tap.mu.Unlock()
	var out [][2][]byte
	for len(stream) >= tlsrec.HeaderLen {
		n := tlsrec.HeaderLen + (int(stream[3])<<8 | int(stream[4]))
		if len(stream) < n {
			break
		}
		if typ, p, err := h.Open(nil, stream[:n]); err == nil {
			out = append(out, [2][]byte{{byte(typ)}, p})
		} else if len(out) > 0 {
			t.Fatalf("record %d under the server's secret does not open: %v", len(out), err)
		}
		stream = stream[n:]
	}
	return out
}

// TestTLSHandoverCloseNotify: a TLS 1.3 connection goes over to the loop's
// record layer, echoes, and ends its close handshake with close_notify
// before the FIN.
func TestTLSHandoverCloseNotify(t *testing.T) {
	s, h, cli := startTLSEcho(t, testOptions())
	c, tap, keys := dialTapped(t, s, cli)
	w := wstest.NewClient(t, c)
	w.Write(upgradeRequest("/ws"), msg(ws.OpText, []byte("hello")))
	w.ExpectSwitching()
	w.ExpectMessage(ws.OpText, []byte("hello"))
	big := pattern(100<<10, false) // over a write chunk of four records
	w.Write(msg(ws.OpBinary, big))
	w.ExpectMessage(ws.OpBinary, big)
	w.CloseNormally()
	if ci := h.waitClose(t); ci.code != 1000 || ci.err != nil {
		t.Fatalf("OnClose: got %+v; want 1000, nil", ci)
	}
	if n := s.Stats().TLSHandovers; n != 1 {
		t.Fatalf("got %d hand-overs; want 1", n)
	}
	recs := serverRecords(t, c, tap, keys)
	if len(recs) < 3 {
		t.Fatalf("got %d records under the server's secret; want the ticket, the data and close_notify", len(recs))
	}
	last := recs[len(recs)-1]
	if last[0][0] != byte(tlsrec.TypeAlert) || !bytes.Equal(last[1], []byte{1, 0}) {
		t.Fatalf("last record: type %d, %x; want alert close_notify (1, 0)", last[0][0], last[1])
	}
	for i, r := range recs {
		if len(r[1]) > tlsrec.MaxPlaintext {
			t.Fatalf("record %d carries %d bytes; want at most %d", i, len(r[1]), tlsrec.MaxPlaintext)
		}
	}
}

// TestTLSCipherRelease: a connection just upgraded with nothing more to
// read drops its ciphers at once (even with TLSCipherIdle an hour); an idle
// one drops them after TLSCipherIdle; each time its next message rebuilds
// them and goes on.
func TestTLSCipherRelease(t *testing.T) {
	for i, idle := range []time.Duration{time.Hour, 50 * time.Millisecond} {
		o := testOptions()
		o.TLSCipherIdle = idle
		o.TimerResolution = 10 * time.Millisecond
		s, _, cli := startTLSEcho(t, o)
		w := wstest.NewClient(t, dialTLS(t, s, cli))
		w.Write(upgradeRequest("/ws"))
		w.ExpectSwitching()
		released := func(want uint64) func() bool {
			return func() bool { return s.Stats().TLSCipherReleases == want }
		}
		eventually(t, fmt.Sprintf("#%d: the ciphers dropped once upgraded", i), released(1))
		for k := range 3 {
			p := pattern(1000+k, true)
			w.Write(msg(ws.OpText, p))
			w.ExpectMessage(ws.OpText, p)
			if idle == time.Hour {
				continue
			}
			eventually(t, fmt.Sprintf("#%d: the ciphers dropped after message %d", i, k), released(uint64(2+k)))
		}
		if n := s.Stats().TLSCipherReleases; idle == time.Hour && n != 1 {
			t.Errorf("#%d: got %d releases with TLSCipherIdle an hour; want 1", i, n)
		}
		w.CloseNormally()
	}
}

// TestTLSBadRecord: a record that does not authenticate gets the alert
// bad_record_mac and a close; the loop serves the next connection.
func TestTLSBadRecord(t *testing.T) {
	s, _, cli := startTLSEcho(t, testOptions())
	for i, bad := range [][]byte{
		append([]byte{23, 3, 3, 0, 40}, make([]byte, 40)...), // forged
		{22, 3, 3, 0, 4, 1, 2, 3, 4},                         // a handshake record after the handshake
		{23, 3, 3, 0x50, 0},                                  // longer than 2^14 + 256
	} {
		c, tap, _ := dialTapped(t, s, cli)
		w := wstest.NewClient(t, c)
		w.Write(upgradeRequest("/ws"))
		w.ExpectSwitching()
		if _, err := tap.Conn.Write(bad); err != nil {
			t.Fatal(err)
		}
		var b [16]byte
		_, err := c.Read(b[:])
		want := map[int]string{0: "bad record MAC", 1: "unexpected message", 2: "record overflow"}[i]
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("#%d: got %v; want the remote error %q", i, err, want)
		}
	}
	c := dialTLS(t, s, cli)
	w := wstest.NewClient(t, c)
	w.Write(upgradeRequest("/ws"), msg(ws.OpText, []byte("still here")))
	w.ExpectSwitching()
	w.ExpectMessage(ws.OpText, []byte("still here"))
}

// TestTLSStdRecords: with Options.TLSStdRecords, and with a TLS 1.2 client
// in any case, the *tls.Conn stays and serves.
func TestTLSStdRecords(t *testing.T) {
	for i, tc := range []struct {
		std     bool
		version uint16
	}{{true, tls.VersionTLS13}, {false, tls.VersionTLS12}} {
		o := testOptions()
		o.TLSStdRecords = tc.std
		s, _, cli := startTLSEcho(t, o)
		cfg := cli.Clone()
		cfg.MaxVersion = tc.version
		c := dialTLS(t, s, cfg)
		w := wstest.NewClient(t, c)
		p := pattern(40<<10, true)
		w.Write(upgradeRequest("/ws"), msg(ws.OpText, p))
		w.ExpectSwitching()
		w.ExpectMessage(ws.OpText, p)
		w.CloseNormally()
		if n := s.Stats().TLSHandovers; n != 0 {
			t.Fatalf("#%d: got %d hand-overs; want 0", i, n)
		}
	}
}
