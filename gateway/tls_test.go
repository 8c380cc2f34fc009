package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/upgate/upgate/internal/testcert"
	"github.com/upgate/upgate/internal/testutil"
)

// tlsFixture is a test CA and the certificate files of a TLS listener:
// a.pem for a.test and 127.0.0.1 (the default), b.pem for b.test.
type tlsFixture struct {
	dir          string
	ca           *testcert.CA
	certA, keyA  string
	certB, keyB  string
	pool         *x509.CertPool
	clientCAFile string
}

func aLeaf() testcert.Leaf {
	l := testcert.LocalhostLeaf()
	l.Names = append([]string{"a.test"}, l.Names...)
	return l
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{dir: t.TempDir(), ca: testcert.NewCA(t, "upgate test CA")}
	f.certA, f.keyA = f.ca.WritePair(t, f.dir, "a", aLeaf())
	f.certB, f.keyB = f.ca.WritePair(t, f.dir, "b", testcert.Leaf{Names: []string{"b.test"}})
	f.pool = f.ca.Pool()
	f.clientCAFile = testcert.Write(t, f.dir, "clients.pem", f.ca.PEM)
	return f
}

// config returns a gateway configuration with both listeners, the TLS one
// serving a and b, the file watch off (tests reload by hand).
func (f *tlsFixture) config() Config {
	cfg := testConfig()
	cfg.TLS = TLS{Listen: "127.0.0.1:0", Certs: []string{f.certA, f.certB}, Keys: []string{f.keyA, f.keyB},
		ReloadInterval: -1}
	return cfg
}

// clientConfig trusts the fixture's CA and asks for name.
func (f *tlsFixture) clientConfig(name string) *tls.Config {
	return &tls.Config{RootCAs: f.pool, ServerName: name}
}

func wssURL(g *Gateway, path string) string { return "wss://" + g.TLSAddr().String() + path }

// dialTLSWS opens a WebSocket over TLS with cfg, or returns the error.
func dialTLSWS(t testing.TB, g *Gateway, path string, cfg *tls.Config) (*websocket.Conn, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: testTimeout, TLSClientConfig: cfg}
	c, _, err := d.Dial(wssURL(g, path), nil)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

func mustDialTLSWS(t testing.TB, g *Gateway, path string, cfg *tls.Config) *websocket.Conn {
	t.Helper()
	c, err := dialTLSWS(t, g, path, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", wssURL(g, path), err)
	}
	return c
}

// peer returns the common name and serial of the certificate c got.
func peer(c *websocket.Conn) (string, string) {
	st := c.NetConn().(*tls.Conn).ConnectionState()
	leaf := st.PeerCertificates[0]
	return leaf.Subject.CommonName, leaf.SerialNumber.String()
}

func echo(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, websocket.TextMessage, []byte(msg))
}

// TestTLSEcho echoes over wss:// while the plain listener echoes over
// ws://, both on the same event loops, and the TLS connection negotiated
// ALPN http/1.1.
func TestTLSEcho(t *testing.T) {
	f := newTLSFixture(t)
	g := startGateway(t, f.config())
	if g.Addr() == nil || g.TLSAddr() == nil || g.Addr().String() == g.TLSAddr().String() {
		t.Fatalf("got Addr %v, TLSAddr %v; want two listeners", g.Addr(), g.TLSAddr())
	}
	alpn := f.clientConfig("a.test")
	alpn.NextProtos = []string{"h2", "http/1.1"}
	c := mustDialTLSWS(t, g, "/echo", alpn)
	if p := c.NetConn().(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN: got %q; want http/1.1", p)
	}
	echo(t, c, "over TLS")
	p := dial(t, g, "/echo", nil)
	echo(t, p, "in the clear")
	// Health checks over HTTPS too.
	client := &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: f.clientConfig("a.test")}}
	resp, err := client.Get("https://" + g.TLSAddr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET https /healthz: %d", resp.StatusCode)
	}
	client.CloseIdleConnections()
	testutil.Eventually(t, "one TLS connection open", func() bool {
		return metric(t, g, `upgate_tcp_connections_open{listener="tls"}`) == 1
	})
	if v := metric(t, g, `upgate_tcp_connections_open{listener="plain"}`); v != 1 {
		t.Errorf("plain connections open: got %v; want 1", v)
	}
}

// TestTLSOnly turns the plain listener off.
func TestTLSOnly(t *testing.T) {
	f := newTLSFixture(t)
	cfg := f.config()
	cfg.Listen = ListenOff
	g := startGateway(t, cfg)
	if g.Addr() != nil || g.TLSAddr() == nil {
		t.Fatalf("got Addr %v, TLSAddr %v; want nil and an address", g.Addr(), g.TLSAddr())
	}
	echo(t, mustDialTLSWS(t, g, "/echo", f.clientConfig("a.test")), "alone")
	fams := scrapeFamilies(t, g)
	for _, m := range fams["upgate_tcp_connections_total"].GetMetric() {
		if l := m.GetLabel()[0].GetValue(); l != "tls" {
			t.Errorf("upgate_tcp_connections_total has listener %q; want tls only", l)
		}
	}
}

// TestTLSSNI serves each name its certificate and an unknown name the
// default one, or nothing with unknown_sni refuse.
func TestTLSSNI(t *testing.T) {
	f := newTLSFixture(t)
	g := startGateway(t, f.config())
	for i, tc := range []struct{ name, want string }{
		{"a.test", "a.test"}, {"b.test", "b.test"}, {"localhost", "a.test"},
	} {
		c := mustDialTLSWS(t, g, "/echo", f.clientConfig(tc.name))
		if cn, _ := peer(c); cn != tc.want {
			t.Errorf("#%d: %s: got certificate %q; want %q", i, tc.name, cn, tc.want)
		}
	}
	// An unknown name gets the default, which does not cover it.
	cfg := f.clientConfig("c.test")
	cfg.InsecureSkipVerify = true
	if cn, _ := peer(mustDialTLSWS(t, g, "/echo", cfg)); cn != "a.test" {
		t.Errorf("unknown name: got %q; want the default a.test", cn)
	}

	rc := f.config()
	rc.TLS.UnknownSNI = UnknownSNIRefuse
	r := startGateway(t, rc)
	if _, err := dialTLSWS(t, r, "/echo", cfg); err == nil {
		t.Fatal("unknown name with refuse: got a connection; want a failed handshake")
	}
	mustDialTLSWS(t, r, "/echo", f.clientConfig("b.test"))
	testutil.Eventually(t, "the refusal counted", func() bool {
		return metric(t, r, `upgate_tls_handshake_failures_total{reason="unknown_sni"}`) == 1
	})
}

// TestTLSReload rewrites the certificate files and reloads: a new
// connection gets the new certificate while one opened before still
// echoes; a failed reload keeps the certificate served and is counted.
func TestTLSReload(t *testing.T) {
	f := newTLSFixture(t)
	g := startGateway(t, f.config())
	cli := f.clientConfig("a.test")
	old := mustDialTLSWS(t, g, "/echo", cli)
	_, oldSerial := peer(old)

	f.ca.WritePair(t, f.dir, "a", aLeaf())
	if err := g.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS: %v", err)
	}
	_, newSerial := peer(mustDialTLSWS(t, g, "/echo", cli))
	if newSerial == oldSerial {
		t.Fatalf("after the reload: got serial %s again; want the new certificate", newSerial)
	}
	echo(t, old, "still here")

	// A bad PEM, then a key of another certificate: the new certificate
	// stays.
	testcert.Write(t, f.dir, "a.pem", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	if err := g.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "a.pem") {
		t.Fatalf("ReloadTLS of a bad PEM: got %v; want an error naming a.pem", err)
	}
	f.ca.WritePair(t, f.dir, "a", aLeaf())
	b, err := os.ReadFile(f.keyB)
	if err != nil {
		t.Fatal(err)
	}
	testcert.Write(t, f.dir, "a.key", b)
	if err := g.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("ReloadTLS of a mismatched key: got %v; want a key mismatch", err)
	}
	if _, s := peer(mustDialTLSWS(t, g, "/echo", cli)); s != newSerial {
		t.Fatalf("after failed reloads: got serial %s; want %s still", s, newSerial)
	}
	if ok, failed := metric(t, g, `upgate_tls_certificate_reloads_total{result="ok"}`),
		metric(t, g, `upgate_tls_certificate_reloads_total{result="failed"}`); ok != 1 || failed != 2 {
		t.Fatalf("reloads: got %v ok, %v failed; want 1, 2", ok, failed)
	}
	if err := startGateway(t, testConfig()).ReloadTLS(); err != ErrNoTLS {
		t.Fatalf("ReloadTLS without TLS: got %v; want ErrNoTLS", err)
	}
}

// TestTLSWatch reloads when the files change, by itself, and logs it.
func TestTLSWatch(t *testing.T) {
	f := newTLSFixture(t)
	cfg := f.config()
	cfg.TLS.ReloadInterval = 20 * time.Millisecond
	var logs logLines
	g := startGateway(t, cfg, WithLogger(newTextLogger(&logs)))
	cli := f.clientConfig("b.test")
	_, before := peer(mustDialTLSWS(t, g, "/echo", cli))
	f.ca.WritePair(t, f.dir, "b", testcert.Leaf{Names: []string{"b.test"}})
	testutil.Eventually(t, "the new certificate served", func() bool {
		c, err := dialTLSWS(t, g, "/echo", cli)
		if err != nil {
			return false
		}
		_, s := peer(c)
		_ = c.Close()
		return s != before
	})
	testutil.Eventually(t, "the reload logged", func() bool {
		return strings.Contains(logs.String(), "TLS certificates reloaded")
	})
}

// TestTLSMutual requires client certificates of the fixture's CA.
func TestTLSMutual(t *testing.T) {
	f := newTLSFixture(t)
	cfg := f.config()
	cfg.TLS.ClientCA = f.clientCAFile
	g := startGateway(t, cfg)
	good := f.clientConfig("a.test")
	good.Certificates = []tls.Certificate{f.ca.Certificate(t, testcert.Leaf{Names: []string{"client"}, Client: true})}
	echo(t, mustDialTLSWS(t, g, "/echo", good), "trusted")

	other := testcert.NewCA(t, "another CA").Certificate(t, testcert.Leaf{Names: []string{"stranger"}, Client: true})
	foreign := f.clientConfig("a.test")
	foreign.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &other, nil }
	for i, cli := range []*tls.Config{f.clientConfig("a.test"), foreign} {
		// With TLS 1.3 the client learns of the refusal at its first read.
		c, err := dialTLSWS(t, g, "/echo", cli)
		if err == nil {
			_, _, err = c.ReadMessage()
		}
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("#%d: got %v; want the certificate refused", i, err)
		}
	}
	testutil.Eventually(t, "both refusals counted", func() bool {
		return metric(t, g, `upgate_tls_handshake_failures_total{reason="client_certificate"}`) == 2
	})
}

// TestTLSDrain closes a wss:// connection with 1001 on Shutdown.
func TestTLSDrain(t *testing.T) {
	f := newTLSFixture(t)
	g, err := New(f.config(), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	c := mustDialTLSWS(t, g, "/echo", f.clientConfig("a.test"))
	echo(t, c, "before the drain")
	done := make(chan error, 1)
	go func() { done <- shutdownNow(g) }()
	expectClose(t, c, 1001)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestTLSMetrics shows the TLS figures: certificate expiry, handshakes,
// failures by reason, refusals at the cap, connections by listener.
func TestTLSMetrics(t *testing.T) {
	f := newTLSFixture(t)
	g := startGateway(t, f.config())
	echo(t, mustDialTLSWS(t, g, "/echo", f.clientConfig("a.test")), "counted")

	// Plain HTTP to the TLS port: 400 and a not_tls failure.
	nc, err := net.DialTimeout("tcp", g.TLSAddr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	_, _ = nc.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	if b, _ := io.ReadAll(nc); !bytes.HasPrefix(b, []byte("HTTP/1.0 400 ")) {
		t.Fatalf("plain HTTP to the TLS port: got %q; want 400", b)
	}
	testutil.Eventually(t, "the failure counted", func() bool {
		return metric(t, g, `upgate_tls_handshake_failures_total{reason="not_tls"}`) == 1
	})

	for i, c := range f.store(t, g) {
		series := fmt.Sprintf(`upgate_tls_certificate_expiry_seconds{file=%q,index="%d",name=%q}`, c.cert, i, c.name)
		v := metric(t, g, series)
		want := time.Until(c.notAfter).Seconds()
		if v < want-60 || v > want+60 {
			t.Errorf("%s: got %v; want about %v", series, v, want)
		}
	}
	for series, want := range map[string]float64{
		`upgate_tls_handshakes_total`:                                      1,
		`upgate_tls_handshakes_refused_total`:                              0,
		`upgate_tls_handshake_failures_total{reason="handshake"}`:          0,
		`upgate_tls_handshake_failures_total{reason="client_gone"}`:        0,
		`upgate_tls_certificate_reloads_total{result="ok"}`:                0,
		`upgate_tcp_connections_total{listener="tls"}`:                     2,
		`upgate_tcp_connections_total{listener="plain"}`:                   0,
		`upgate_tls_handshake_failures_total{reason="client_certificate"}`: 0,
	} {
		if v := metric(t, g, series); v != want {
			t.Errorf("%s: got %v; want %v", series, v, want)
		}
	}
	// Without TLS no TLS family is shown.
	fams := scrapeFamilies(t, startGateway(t, testConfig()))
	for name := range fams {
		if strings.HasPrefix(name, "upgate_tls_") {
			t.Errorf("%s shown without a TLS listener", name)
		}
	}
}

// tlsFamilies starts a gateway with a TLS listener, makes one handshake and
// returns the families its /metrics shows.
func tlsFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	f := newTLSFixture(t)
	g := startGateway(t, f.config())
	echo(t, mustDialTLSWS(t, g, "/echo", f.clientConfig("a.test")), "counted")
	return scrapeFamilies(t, g)
}

// TestTLSMetricsFamilies: a gateway with a TLS listener shows every TLS
// family, with its type and help.
func TestTLSMetricsFamilies(t *testing.T) {
	fams := tlsFamilies(t)
	for i, d := range metricDefs {
		if !d.tls {
			continue
		}
		f := fams[d.name]
		if f == nil || f.GetHelp() != d.help {
			t.Errorf("#%d: %s: got %v; want it shown with its help", i, d.name, f)
		}
	}
}

// certRow is what the metrics and the admin API say of a certificate.
type certRow struct {
	name, cert string
	notAfter   time.Time
}

// store reads the certificates the gateway serves from its files.
func (f *tlsFixture) store(t *testing.T, g *Gateway) []certRow {
	t.Helper()
	var rows []certRow
	for _, c := range g.TLSCertificates() {
		rows = append(rows, certRow{name: c.Name, cert: c.Cert, notAfter: c.NotAfter})
	}
	if len(rows) != 2 || rows[0].name != "a.test" || rows[1].name != "b.test" {
		t.Fatalf("certificates: got %+v; want a.test and b.test", rows)
	}
	return rows
}

// TestTLSAdmin shows the TLS listener and its certificates in GET /tls.
func TestTLSAdmin(t *testing.T) {
	f := newTLSFixture(t)
	g := startGateway(t, f.config())
	ans := doJSON(t, "GET", adminURL(g, "/tls"), nil, 200)
	if ans["addr"] != g.TLSAddr().String() || ans["listen"] != "127.0.0.1:0" {
		t.Fatalf("got %v; want the TLS listener's address", ans)
	}
	certs, _ := ans["certificates"].([]any)
	if len(certs) != 2 {
		t.Fatalf("certificates: got %v; want two", ans["certificates"])
	}
	for i, want := range []string{f.certA, f.certB} {
		c := certs[i].(map[string]any)
		if c["cert"] != want || c["index"] != float64(i) || c["expires_in_seconds"].(float64) <= 0 {
			t.Errorf("#%d: got %v; want %s, expiring later", i, c, filepath.Base(want))
		}
		if _, err := time.Parse(time.RFC3339, c["not_after"].(string)); err != nil {
			t.Errorf("#%d: not_after: %v", i, err)
		}
	}
	doJSON(t, "GET", adminURL(startGateway(t, testConfig()), "/tls"), nil, 404)
}

// TestTLSRequest: a Custom route sees the TLS session in Request.TLS: the
// server name, the version and, under mutual TLS, the client's
// certificate; a plain connection sees nil.
func TestTLSRequest(t *testing.T) {
	f := newTLSFixture(t)
	cfg := f.config()
	cfg.TLS.ClientCA = f.clientCAFile
	cfg.Routes = append(cfg.Routes, Route{Path: "/custom", Behaviour: Custom})
	h := newRecorder()
	g := startGateway(t, cfg, WithHandler(h))
	cli := f.clientConfig("a.test")
	cli.Certificates = []tls.Certificate{f.ca.Certificate(t, testcert.Leaf{Names: []string{"client-7"}, Client: true})}
	token := http.Header{"X-Token": {"secret"}} // the recorder's Authorize
	d := websocket.Dialer{HandshakeTimeout: testTimeout, TLSClientConfig: cli}
	c, _, err := d.Dial(wssURL(g, "/custom"), token)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := recv(t, h.opens).r
	if r.TLS == nil {
		t.Fatal("Request.TLS: got nil; want the session")
	}
	if r.TLS.ServerName != "a.test" || r.TLS.Version != tls.VersionTLS13 || !r.TLS.HandshakeComplete {
		t.Errorf("Request.TLS: got name %q, version %x, complete %v; want a.test, TLS 1.3, true",
			r.TLS.ServerName, r.TLS.Version, r.TLS.HandshakeComplete)
	}
	if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "client-7" {
		t.Errorf("Request.TLS.PeerCertificates: got %d certificates; want client-7's", len(r.TLS.PeerCertificates))
	}
	defer dial(t, g, "/custom", token).Close()
	if r := recv(t, h.opens).r; r.TLS != nil {
		t.Errorf("plain listener: got Request.TLS %+v; want nil", r.TLS)
	}
}

// TestTLSPubSub: subscribers on both listeners of one topic each get a
// publish, from Go and from a client over TLS.
func TestTLSPubSub(t *testing.T) {
	f := newTLSFixture(t)
	cfg := f.config()
	cfg.Routes = append(cfg.Routes, Route{Path: "/ws/{topic}", Behaviour: PubSub, Publish: true})
	g := startGateway(t, cfg)
	const n = 8
	var subs []*websocket.Conn
	for i := range n {
		if i%2 == 0 {
			subs = append(subs, mustDialTLSWS(t, g, "/ws/news", f.clientConfig("a.test")))
		} else {
			subs = append(subs, dial(t, g, "/ws/news", nil))
		}
	}
	testutil.Eventually(t, "subscriptions", func() bool { return g.Subscribers("news") == n })
	if got, _ := g.Publish("news", OpBinary, []byte("from Go")); got != n {
		t.Fatalf("Publish: got %d deliveries; want %d", got, n)
	}
	expectAll(t, subs, websocket.BinaryMessage, []byte("from Go"))
	big := bytes.Repeat([]byte("over two records "), 2000)
	if err := subs[0].WriteMessage(websocket.TextMessage, big); err != nil {
		t.Fatal(err)
	}
	expectAll(t, subs, websocket.TextMessage, big)
}
