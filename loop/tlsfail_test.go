//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/testcert"
	"github.com/upgate/upgate/internal/wstest"
	"github.com/upgate/upgate/loop/tlsrec"
)

// fakeAlert stands for crypto/tls's unexported alert type: a byte.
type fakeAlert uint8

func (a fakeAlert) Error() string { return fmt.Sprintf("tls: alert(%d)", uint8(a)) }

var errTestUnknownName = errors.New("test: no certificate for the server name")

// testFailureOf names the test's unknown-name error, as a certificate
// store's owner would.
func testFailureOf(err error) (TLSFailure, bool) {
	if errors.Is(err, errTestUnknownName) {
		return TLSFailUnknownSNI, true
	}
	return 0, false
}

func TestClassifyTLS(t *testing.T) {
	conn := &net.TCPConn{}
	hdr := func(s string) (h [5]byte) {
		copy(h[:], s)
		return h
	}
	for i, tc := range []struct {
		err  error
		want TLSFailure
	}{
		{tls.RecordHeaderError{Msg: "first record", RecordHeader: hdr("GET /"), Conn: conn}, TLSFailNotTLS},
		{tls.RecordHeaderError{Msg: "first record", RecordHeader: hdr("POST "), Conn: conn}, TLSFailNotTLS},
		{tls.RecordHeaderError{Msg: "first record", RecordHeader: hdr("\x00\x01\x02\x03\x04"), Conn: conn}, TLSFailBadRecord},
		{tls.RecordHeaderError{Msg: "oversized", RecordHeader: hdr("GET /")}, TLSFailBadRecord},
		{tls.RecordHeaderError{Msg: "SSLv2", RecordHeader: hdr("\x80\x2e\x01\x03\x01")}, TLSFailVersion},
		{fmt.Errorf("wrapped: %w", tls.RecordHeaderError{RecordHeader: hdr("HEAD "), Conn: conn}), TLSFailNotTLS},
		{&net.OpError{Op: "remote error", Err: fakeAlert(42)}, TLSFailClientAlert},
		{&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, TLSFailClientCertificate},
		{errors.New("tls: client didn't provide a certificate"), TLSFailClientCertificate},
		{errors.New("tls: client offered only unsupported versions: [302 301]"), TLSFailVersion},
		{errTransportClosed, TLSFailClientGone},
		{fmt.Errorf("%w \"nope.example\"", errTestUnknownName), TLSFailUnknownSNI},
		{errors.New("tls: no cipher suite supported by both client and server"), TLSFailHandshake},
	} {
		if got := classifyTLS(tc.err, -1, testFailureOf); got != tc.want {
			t.Errorf("#%d: %v: got %v; want %v", i, tc.err, got, tc.want)
		}
	}
	local := &net.OpError{Op: "local error", Err: fakeAlert(40)}
	for i, tc := range []struct {
		alert int
		want  TLSFailure
	}{{int(tlsrec.AlertDecodeError), TLSFailBadHello}, {int(tlsrec.AlertProtocolVersion), TLSFailVersion}, {40, TLSFailHandshake}, {-1, TLSFailHandshake}} {
		if got := classifyTLS(local, tc.alert, nil); got != tc.want {
			t.Errorf("alert #%d (%d): got %v; want %v", i, tc.alert, got, tc.want)
		}
	}
	if got := classifyTLS(errTestUnknownName, -1, nil); got != TLSFailHandshake {
		t.Errorf("without TLSFailureOf: got %v; want handshake", got)
	}
	label := regexp.MustCompile(`^[a-z][a-z_]*$`)
	seen := map[string]bool{}
	for r := range TLSFailure(NumTLSFailures) {
		name := r.String()
		if !label.MatchString(name) || seen[name] {
			t.Errorf("#%d: name %q: want a distinct label value", r, name)
		}
		seen[name] = true
	}
	if got := TLSFailure(NumTLSFailures).String(); got != "TLSFailure(10)" {
		t.Errorf("out of range: got %q", got)
	}
}

// failureServer starts an echo server with a plain and a TLS listener
// whose configuration depends on the server name: "localhost" (or none)
// is served, "mtls.localhost" requires a client certificate of ca,
// "modern.localhost" TLS 1.3, and any other name is refused.
func failureServer(t *testing.T, o Options) (s *Server, ca *testcert.CA, cli *tls.Config) {
	t.Helper()
	ca = testcert.NewCA(t, "upgate test CA")
	leaf := testcert.LocalhostLeaf()
	leaf.Names = append(leaf.Names, "mtls.localhost", "modern.localhost")
	cert := ca.Certificate(t, leaf)
	plain := &tls.Config{Certificates: []tls.Certificate{cert}}
	mtls := &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	modern := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	o.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		switch h.ServerName {
		case "", "localhost":
			return plain, nil
		case "mtls.localhost":
			return mtls, nil
		case "modern.localhost":
			return modern, nil
		}
		return nil, fmt.Errorf("%w %q", errTestUnknownName, h.ServerName)
	}}
	o.TLSAddr = "127.0.0.1:0"
	o.TLSFailureOf = testFailureOf
	s = startServer(t, newTestHandler(), o)
	return s, ca, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
}

// rawTo connects to addr without TLS.
func rawTo(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// tlsTry runs a TLS handshake with addr and reads a byte: the error the
// client sees.
func tlsTry(t *testing.T, addr net.Addr, cfg *tls.Config) error {
	t.Helper()
	c := tls.Client(rawTo(t, addr), cfg)
	err := c.Handshake()
	if err == nil {
		_, err = c.Read(make([]byte, 1))
	}
	return err
}

// readRecords reads what the server wrote until it closed: TLS records
// (their types) and any bytes after.
func readRecords(t *testing.T, c net.Conn) (types []byte) {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("read: %v; want the server to close", err)
	}
	for len(b) >= 5 {
		n := int(b[3])<<8 | int(b[4])
		types = append(types, b[0])
		b = b[min(5+n, len(b)):]
	}
	return types
}

// TestTLSFailureReasons makes each failure over real sockets, with a
// WebSocket over TLS open throughout: each failure is counted under its
// reason, ends with its alert (or the 400) and a close, and disturbs no
// other connection.
func TestTLSFailureReasons(t *testing.T) {
	o := testOptions()
	o.HandshakeTimeout = 300 * time.Millisecond
	s, ca, cli := failureServer(t, o)
	addr := s.TLSAddr()

	// A WebSocket over TLS that stays open, past the handshake timeout.
	good := wstest.NewClient(t, dialTLSAt(t, addr, cli))
	good.Write(upgradeRequest("/ws"))
	good.ExpectSwitching()

	partial := append([]byte{22, 3, 1, 2, 0}, make([]byte, 10)...) // half a ClientHello
	expired := ca.Certificate(t, testcert.Leaf{Names: []string{"old client"}, Client: true, NotAfter: time.Now().Add(-time.Hour)})
	other := testcert.NewCA(t, "another CA")
	foreign := other.Certificate(t, testcert.Leaf{Names: []string{"stranger"}, Client: true})
	valid := ca.Certificate(t, testcert.Leaf{Names: []string{"client"}, Client: true})
	withName := func(name string, certs ...tls.Certificate) *tls.Config {
		c := cli.Clone()
		c.ServerName = name
		c.Certificates = certs
		return c
	}

	want := [NumTLSFailures]uint64{}
	for _, tc := range []struct {
		name   string
		reason TLSFailure
		run    func(t *testing.T)
	}{
		{"plaintext HTTP", TLSFailNotTLS, func(t *testing.T) {
			c := rawTo(t, addr)
			_, _ = c.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"))
			b, err := io.ReadAll(c)
			if err != nil && !isReset(err) {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("HTTP/1.0 400 Bad Request\r\n")) ||
				!bytes.HasSuffix(b, []byte("\r\n\r\nClient sent an HTTP request to an HTTPS port.\n")) {
				t.Fatalf("got %q; want the 400 of net/http", b)
			}
		}},
		{"garbage", TLSFailBadRecord, func(t *testing.T) {
			c := rawTo(t, addr)
			_, _ = c.Write([]byte("\x00\x01\x02\x03\x04\x05 hello"))
			if types := readRecords(t, c); len(types) != 0 {
				t.Fatalf("got records %v; want none", types)
			}
		}},
		{"bad ClientHello", TLSFailBadHello, func(t *testing.T) {
			c := rawTo(t, addr)
			_, _ = c.Write([]byte{22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}) // a ClientHello of 2 bytes
			if types := readRecords(t, c); !bytes.Equal(types, []byte{21}) {
				t.Fatalf("got records %v; want an alert", types)
			}
		}},
		{"stalled", TLSFailTimeout, func(t *testing.T) {
			c := rawTo(t, addr)
			_, _ = c.Write(partial)
			if types := readRecords(t, c); len(types) != 0 {
				t.Fatalf("got records %v; want none", types)
			}
		}},
		{"client gone", TLSFailClientGone, func(t *testing.T) {
			c := rawTo(t, addr)
			_, _ = c.Write(partial)
			eventually(t, "the handshake to begin", func() bool { return s.Stats().TLSConnsOpen == 2 })
			_ = c.Close()
		}},
		{"unknown server name", TLSFailUnknownSNI, func(t *testing.T) {
			if err := tlsTry(t, addr, withName("nope.localhost")); err == nil || !strings.Contains(err.Error(), "internal error") {
				t.Fatalf("client: got %v; want an internal error alert", err)
			}
		}},
		{"expired client certificate", TLSFailClientCertificate, func(t *testing.T) {
			if err := tlsTry(t, addr, withName("mtls.localhost", expired)); err == nil || !strings.Contains(err.Error(), "expired") {
				t.Fatalf("client: got %v; want a certificate expired alert", err)
			}
		}},
		{"no client certificate", TLSFailClientCertificate, func(t *testing.T) {
			if err := tlsTry(t, addr, withName("mtls.localhost")); err == nil || !strings.Contains(err.Error(), "certificate required") {
				t.Fatalf("client: got %v; want a certificate required alert", err)
			}
		}},
		{"client certificate of another CA", TLSFailClientCertificate, func(t *testing.T) {
			c := withName("mtls.localhost")
			// Sent although the server asks for certificates of ca.
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
			if err := tlsTry(t, addr, c); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
				t.Fatalf("client: got %v; want an unknown certificate authority alert", err)
			}
		}},
		{"old version", TLSFailVersion, func(t *testing.T) {
			c := withName("modern.localhost")
			c.MaxVersion = tls.VersionTLS12
			if err := tlsTry(t, addr, c); err == nil || !strings.Contains(err.Error(), "protocol version") {
				t.Fatalf("client: got %v; want a protocol version alert", err)
			}
		}},
		{"client distrusts the certificate", TLSFailClientAlert, func(t *testing.T) {
			var verr *tls.CertificateVerificationError
			if err := tlsTry(t, addr, &tls.Config{ServerName: "localhost"}); !errors.As(err, &verr) {
				t.Fatalf("client: got %v; want a verification error", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want[tc.reason]++
			n := want[tc.reason]
			tc.run(t)
			eventually(t, "the failure counted as "+tc.reason.String(), func() bool {
				return s.Stats().TLSFailuresBy[tc.reason] == n
			})
		})
	}

	// A good client with a certificate still gets through mTLS.
	c := tls.Client(rawTo(t, addr), withName("mtls.localhost", valid))
	w := wstest.NewClient(t, c)
	w.Write(upgradeRequest("/ws"), msg(ws.OpText, []byte("trusted")))
	w.ExpectSwitching()
	w.ExpectMessage(ws.OpText, []byte("trusted"))
	w.CloseNormally()

	good.Write(msg(ws.OpText, []byte("undisturbed")))
	good.ExpectMessage(ws.OpText, []byte("undisturbed"))
	good.CloseNormally()
	eventually(t, "every connection to close", func() bool { return s.Stats().ConnsOpen == 0 })
	st := s.Stats()
	var sum uint64
	for _, n := range st.TLSFailuresBy {
		sum += n
	}
	if st.TLSFailuresBy != want || st.TLSFailures != sum || st.TLSHandshakes != 2 || st.Rejected[400] != 1 {
		t.Fatalf("stats: got %v (sum %d, total %d), %d handshakes, %d 400s; want %v, 2 handshakes, one 400",
			st.TLSFailuresBy, sum, st.TLSFailures, st.TLSHandshakes, st.Rejected[400], want)
	}
}

// teeConn keeps what it reads.
type teeConn struct {
	net.Conn
	read bytes.Buffer
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Write(p[:n])
	return n, err
}

// TestTLSToPlainListener: a TLS client on the plain listener gets the
// plain path's 400, which it reads as a record that is not TLS, and the
// connection closes.
func TestTLSToPlainListener(t *testing.T) {
	s, _, cli := failureServer(t, testOptions())
	raw := &teeConn{Conn: rawTo(t, s.Addr())}
	err := tls.Client(raw, cli).Handshake()
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) || string(rh.RecordHeader[:]) != "HTTP/" {
		t.Fatalf("client: got %v; want a record header that is HTTP", err)
	}
	if _, err := io.ReadAll(raw); err != nil && !isReset(err) {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw.read.Bytes(), []byte("HTTP/1.1 400 ")) {
		t.Fatalf("got %q; want a 400", raw.read.Bytes())
	}
	st := s.Stats()
	if st.Rejected[400] != 1 || st.TLSFailures != 0 || st.TLSConnsTotal != 0 {
		t.Fatalf("stats: got %d 400s, %d TLS failures, %d TLS connections; want 1, 0, 0",
			st.Rejected[400], st.TLSFailures, st.TLSConnsTotal)
	}
}
