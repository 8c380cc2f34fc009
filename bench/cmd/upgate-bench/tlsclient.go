package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/bench/internal/loadgen"
	"github.com/upgate/upgate/loop/tlsrec"
)

// The TLS client (-tls). crypto/tls needs a blocking net.Conn, so unlike
// the epoll engine it runs one goroutine per handshake in flight (and per
// open connection for hold). That costs the client some CPU, but a TLS
// handshake costs it far more (key exchange, signature check), and the
// figures that compare servers are the server's CPU time per handshake
// and its memory per connection. Echo is different: there a goroutine per
// connection made the client the bottleneck and left the server idle
// between messages, so that every server paid a wake-up per message and
// the comparison measured the client. Echo connections therefore hand
// their socket to the epoll engine once upgraded (tlsepoll.go), with the
// record layer of loop/tlsrec in client mode.

// TLSInfo describes a TLS run: what the client offered and what the
// server chose.
type TLSInfo struct {
	// KeyShares is the client's choice: "x25519" (X25519 only) or
	// "default" (Go's defaults: X25519MLKEM768 and X25519 key shares, as
	// current browsers send).
	KeyShares string `json:"key_shares"`
	// Offered lists the groups the client supports, in its order of
	// preference ("default": Go's list; the key shares sent are the first
	// two).
	Offered []string `json:"offered,omitempty"`
	// Verified is whether the client verified the server's certificate
	// (false: InsecureSkipVerify).
	Verified bool `json:"verified"`
	// Version, Cipher and Group are what the server negotiated (the first
	// connection's; Mixed lists any other seen later).
	Version string   `json:"version,omitempty"`
	Cipher  string   `json:"cipher,omitempty"`
	Group   string   `json:"group,omitempty"`
	Mixed   []string `json:"mixed,omitempty"`
	// Resumed counts connections that resumed a session: it must stay 0.
	Resumed int64 `json:"resumed,omitempty"`
}

// negotiated is the one-line description of the negotiated parameters.
func (i *TLSInfo) negotiated() string {
	if i == nil || i.Cipher == "" {
		return ""
	}
	s := strings.TrimPrefix(i.Cipher, "TLS_") + ", " + i.Group
	if len(i.Mixed) > 0 {
		s += " (also " + strings.Join(i.Mixed, ", ") + ")"
	}
	return s
}

// tlsConfig builds the client's TLS configuration from the flags: TLS 1.3
// only, no session cache (every handshake is a full one), ALPN http/1.1
// as browsers send for wss://.
func tlsConfig(cfg *config) (*tls.Config, *TLSInfo, error) {
	host, _, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return nil, nil, err
	}
	tc := &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		ServerName: host,
		NextProtos: []string{"http/1.1"},
	}
	info := &TLSInfo{KeyShares: cfg.tlsCurves}
	switch cfg.tlsCurves {
	case "x25519":
		tc.CurvePreferences = []tls.CurveID{tls.X25519}
		info.Offered = []string{tls.X25519.String()}
	case "default":
		info.Offered = []string{tls.X25519MLKEM768.String(), tls.X25519.String(), "(Go's defaults)"}
	default:
		return nil, nil, fmt.Errorf("-tls-curves must be x25519 or default")
	}
	switch {
	case cfg.tlsCA != "":
		pem, err := os.ReadFile(cfg.tlsCA)
		if err != nil {
			return nil, nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("-tls-ca %s: no certificate in it", cfg.tlsCA)
		}
		info.Verified = true
	case cfg.tlsInsecure:
		tc.InsecureSkipVerify = true
	default:
		return nil, nil, fmt.Errorf("-tls needs -tls-ca FILE or -tls-insecure")
	}
	return tc, info, nil
}

// tlsClient opens wss:// connections and counts their handshakes.
type tlsClient struct {
	cfg     *tls.Config
	records bool // connections keep their records in rec, not in crypto/tls
	addr    string
	srcs    []net.IP
	nextSrc atomic.Uint64
	keys    *loadgen.KeyRing
	nextKey atomic.Uint64
	verify  bool
	rst     bool
	timeout time.Duration
	base    time.Time

	counting atomic.Bool
	claimed  atomic.Int64 // connections open or being opened (fill)
	lostN    atomic.Int64

	mu         sync.Mutex
	info       *TLSInfo
	handshakes int64
	failed     int64
	refused    int64
	errs       map[string]int64
	hist       *hdrhistogram.Histogram // connect → verified 101, ns
	open       []*wssConn
}

func newTLSClient(cfg *config) (*tlsClient, error) {
	tc, info, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	t := &tlsClient{
		cfg: tc, addr: cfg.addr, info: info,
		keys:    loadgen.NewKeyRing(4096, cfg.addr, cfg.path),
		verify:  cfg.verifyAccept,
		rst:     cfg.closeMode == "rst",
		timeout: cfg.hsTimeout,
		base:    time.Now(),
		errs:    map[string]int64{},
		hist:    newHist(),
	}
	for _, s := range loadgen.Sources(cfg.sources) {
		t.srcs = append(t.srcs, net.IPv4(s.Addr[0], s.Addr[1], s.Addr[2], s.Addr[3]))
	}
	return t, nil
}

// wssConn is one open wss:// connection.
type wssConn struct {
	tc      *tls.Conn
	raw     *net.TCPConn
	rec     *tlsrec.Conn // set when the client keeps the records: tc is then unused after the handshake
	sealed  []byte       // rec: records read but not opened yet
	in      []byte       // plaintext read but not processed yet
	skip    int          // bytes of in that the last data frame took
	closing atomic.Bool
}

// write sends p.
func (c *wssConn) write(p []byte) error {
	if c.rec == nil {
		_, err := c.tc.Write(p)
		return err
	}
	w, err := c.rec.Encrypt(nil, p)
	if err == nil {
		_, err = c.raw.Write(w)
	}
	return err
}

// read appends at least one byte of plaintext to c.in, or fails.
func (c *wssConn) read() error {
	for {
		if c.rec == nil {
			c.in = slices.Grow(c.in, 512)
			n, err := c.tc.Read(c.in[len(c.in):cap(c.in)])
			c.in = c.in[:len(c.in)+n]
			if n > 0 {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}
		c.sealed = slices.Grow(c.sealed, 512)
		n, err := c.raw.Read(c.sealed[len(c.sealed):cap(c.sealed)])
		c.sealed = c.sealed[:len(c.sealed)+n]
		old := len(c.in)
		m, in, derr := c.rec.Decrypt(c.in, c.sealed)
		c.in = in
		c.sealed = c.sealed[:copy(c.sealed, c.sealed[m:])]
		switch {
		case derr != nil:
			return derr
		case len(c.in) > old:
			return nil
		case err != nil:
			return err
		}
	}
}

// close ends c at once: with SO_LINGER 0 (set at dial for -close rst) an
// RST and no close_notify, like the plain client.
func (c *wssConn) close() {
	c.closing.Store(true)
	_ = c.raw.Close()
}

// bindNoPort lets connect(2) choose the source port, so that every source
// address has its own ephemeral port range.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	return rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
}

// tlsErrKind names an error of step op for the error counters; refused
// reports ECONNREFUSED.
func tlsErrKind(op string, err error) (string, bool) {
	var en syscall.Errno
	switch {
	case errors.As(err, &en):
		return loadgen.ErrKind(op, en)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return op + ": timeout", false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return op + ": eof", false
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return op + ": alert " + ae.Error(), false
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return op + ": " + oe.Err.Error(), false
	}
	return op + ": " + err.Error(), false
}

// fail counts a failed handshake or connection while counting.
func (t *tlsClient) fail(kind string, refused bool) {
	if !t.counting.Load() {
		return
	}
	t.mu.Lock()
	if refused {
		t.refused++
	} else {
		t.failed++
		t.errs[kind]++
	}
	t.mu.Unlock()
}

// dial opens one wss:// connection by deadline: TCP from the next source
// address, a full TLS 1.3 handshake, the upgrade request and its 101,
// verified. It counts the handshake (timed from connect) while counting;
// on failure it returns nil and the error's kind.
func (t *tlsClient) dial(deadline time.Time) (*wssConn, string, bool) {
	t0 := time.Now()
	src := t.srcs[t.nextSrc.Add(1)%uint64(len(t.srcs))]
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Deadline: deadline, KeepAlive: -1, Control: bindNoPort}
	nc, err := d.Dial("tcp4", t.addr)
	if err != nil {
		kind, refused := tlsErrKind("connect", err)
		return nil, kind, refused
	}
	raw := nc.(*net.TCPConn)
	if t.rst {
		_ = raw.SetLinger(0)
	}
	_ = raw.SetDeadline(deadline)
	c := &wssConn{raw: raw}
	var keys *trafficSecrets
	if t.records {
		keys = new(trafficSecrets)
		cfg := t.cfg.Clone()
		cfg.KeyLogWriter = keys
		c.tc = tls.Client(&recordReader{Conn: raw, hoff: tlsrec.HeaderLen}, cfg)
	} else {
		c.tc = tls.Client(raw, t.cfg)
	}
	fail := func(op string, err error) (*wssConn, string, bool) {
		c.close()
		kind, refused := tlsErrKind(op, err)
		return nil, kind, refused
	}
	if err := c.tc.Handshake(); err != nil {
		return fail("tls", err)
	}
	st := c.tc.ConnectionState()
	if t.records {
		rec, err := keys.records(st.CipherSuite)
		if err != nil {
			return fail("tls", err)
		}
		c.rec = rec
	}
	k := int(t.nextKey.Add(1) % uint64(len(t.keys.Reqs)))
	if err := c.write(t.keys.Reqs[k]); err != nil {
		return fail("write", err)
	}
	end := -1
	for end < 0 {
		if len(c.in) > 16<<10 {
			c.close()
			return nil, "response head too long", false
		}
		if err := c.read(); err != nil {
			return fail("read", err)
		}
		end = loadgen.HeadEnd(c.in)
	}
	buf := c.in
	var want []byte
	if t.verify {
		want = t.keys.Accepts[k]
	}
	if why := loadgen.CheckResponse(buf[:end+4], want); why != "" {
		c.close()
		return nil, why, false
	}
	c.in = buf[:copy(buf, buf[end+4:])]
	_ = raw.SetDeadline(time.Time{})
	t.mu.Lock()
	t.noteState(&st)
	if t.counting.Load() && time.Now().Before(deadline) {
		t.handshakes++
		_ = t.hist.RecordValue(int64(time.Since(t0)))
	}
	t.mu.Unlock()
	return c, "", false
}

// noteState records what the server negotiated. t.mu held.
func (t *tlsClient) noteState(st *tls.ConnectionState) {
	i := t.info
	if st.DidResume {
		i.Resumed++
	}
	v := tls.VersionName(st.Version)
	c := tls.CipherSuiteName(st.CipherSuite)
	g := st.CurveID.String()
	if i.Cipher == "" {
		i.Version, i.Cipher, i.Group = v, c, g
		return
	}
	if v != i.Version || c != i.Cipher || g != i.Group {
		if s := v + " " + c + " " + g; !slices.Contains(i.Mixed, s) {
			i.Mixed = append(i.Mixed, s)
		}
	}
}

// churn keeps conc handshakes in flight until until; each connection is
// closed as soon as its 101 is verified. A handshake cut off by until is
// not counted as failed.
func (t *tlsClient) churn(conc int, until time.Time) {
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(until) {
				deadline := time.Now().Add(t.timeout)
				if deadline.After(until) {
					deadline = until
				}
				c, kind, refused := t.dial(deadline)
				if c == nil {
					if time.Now().Before(until) {
						t.fail(kind, refused)
					}
					continue
				}
				c.close()
			}
		})
	}
	wg.Wait()
}

// fill opens connections, conc at a time, until n are open, handing each
// to serve (which must return at once); it fails after limit.
func (t *tlsClient) fill(n, conc int, limit time.Duration, serve func(*wssConn)) error {
	stop := time.Now().Add(limit)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if t.claimed.Add(1) > int64(n) {
					t.claimed.Add(-1)
					return
				}
				c, kind, refused := t.dial(time.Now().Add(t.timeout))
				if c == nil {
					t.claimed.Add(-1)
					t.fail(kind, refused)
					continue
				}
				t.mu.Lock()
				t.open = append(t.open, c)
				t.mu.Unlock()
				serve(c)
			}
		})
	}
	wg.Wait()
	if open := t.openConns(); open < n {
		t.mu.Lock()
		defer t.mu.Unlock()
		return fmt.Errorf("only %d of %d connections open after %v (failed %d, refused %d, errors %v)",
			open, n, limit, t.failed, t.refused, t.errs)
	}
	return nil
}

// openConns is the number of connections opened and not lost.
func (t *tlsClient) openConns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open) - int(t.lostN.Load())
}

// lose counts an open connection that ended without the client asking.
func (t *tlsClient) lose(c *wssConn, kind string) {
	if c.closing.Load() {
		return
	}
	c.close()
	t.lostN.Add(1)
	if t.counting.Load() {
		t.mu.Lock()
		t.errs["lost: "+kind]++
		t.mu.Unlock()
	}
}

// closeAll closes every open connection.
func (t *tlsClient) closeAll() {
	t.mu.Lock()
	open := t.open
	t.open = nil
	t.mu.Unlock()
	for _, c := range open {
		c.close()
	}
}

// next returns c's next data frame, answering pings and skipping pongs; op
// 0 with a kind when the connection ended. The payload is valid until the
// next call.
func (c *wssConn) next() (byte, []byte, string) {
	if c.skip > 0 {
		c.in = c.in[:copy(c.in, c.in[c.skip:])]
		c.skip = 0
	}
	for {
		op, payload, n, err := loadgen.ParseFrame(c.in)
		if err != nil {
			return 0, nil, err.Error()
		}
		if n == 0 {
			if err := c.read(); err != nil {
				kind, _ := tlsErrKind("read", err)
				return 0, nil, kind
			}
			continue
		}
		switch op {
		case loadgen.OpPing:
			f := loadgen.AppendMasked(nil, loadgen.OpPong, payload, [4]byte{1, 2, 3, 4})
			if err := c.write(f); err != nil {
				kind, _ := tlsErrKind("write", err)
				return 0, nil, kind
			}
		case loadgen.OpPong:
		case loadgen.OpClose:
			return 0, nil, "server close frame"
		default:
			c.skip = n
			return op, payload, ""
		}
		c.in = c.in[:copy(c.in, c.in[n:])]
	}
}

// fillResult copies the client's handshake counters into r.
func (t *tlsClient) fillResult(r *Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Handshakes, r.Failed, r.Refused = t.handshakes, t.failed, t.refused
	if len(t.errs) > 0 {
		r.Errors = t.errs
	}
	r.HandshakeLatency = summarize(t.hist, true)
	info := *t.info
	r.TLS = &info
	if info.Resumed > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d sessions resumed", info.Resumed))
	}
}
