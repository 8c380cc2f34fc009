package tlsrec

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyLog keeps the application traffic secrets crypto/tls logs.
type keyLog struct {
	mu             sync.Mutex
	client, server []byte
}

func (k *keyLog) Write(line []byte) (int, error) {
	f := strings.Fields(string(line))
	if len(f) == 3 {
		s, err := hex.DecodeString(f[2])
		if err == nil {
			k.mu.Lock()
			switch f[0] {
			case "CLIENT_TRAFFIC_SECRET_0":
				k.client = s
			case "SERVER_TRAFFIC_SECRET_0":
				k.server = s
			}
			k.mu.Unlock()
		}
	}
	return len(line), nil
}

// recorder keeps what the server writes during its handshake.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out []byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.out = append(r.out, p...)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// tcpPair returns the two ends of a loopback TCP connection (net.Pipe has
// no buffer, and a handshake's flights would block on it).
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); srv.Close() })
	return cli, srv
}

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestCryptoTLSPeer: after a crypto/tls server handshake, a Conn built from
// the logged secrets talks to the crypto/tls client: it reads what the
// client wrote, and the client reads what it writes, a KeyUpdate of its own
// included, with and without a session ticket sent under the server's
// secret before the hand-over.
func TestCryptoTLSPeer(t *testing.T) {
	cert := testCert(t)
	for i, tickets := range []bool{true, false} {
		cliRaw, srvRaw := tcpPair(t)
		rec := &recorder{Conn: srvRaw}
		kl := &keyLog{}
		scfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
			KeyLogWriter: kl, SessionTicketsDisabled: !tickets}
		ccfg := &tls.Config{InsecureSkipVerify: true, ServerName: "example.test",
			ClientSessionCache: tls.NewLRUClientSessionCache(1)}
		srv := tls.Server(rec, scfg)
		cli := tls.Client(cliRaw, ccfg)
		errc := make(chan error, 1)
		go func() { errc <- cli.Handshake() }()
		if err := srv.Handshake(); err != nil {
			t.Fatalf("#%d: server handshake: %v", i, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("#%d: client handshake: %v", i, err)
		}
		suite := srv.ConnectionState().CipherSuite
		var c Conn
		if err := c.In.Init(suite, kl.client); err != nil {
			t.Fatal(err)
		}
		if err := c.Out.Init(suite, kl.server); err != nil {
			t.Fatal(err)
		}
		n, _ := c.Out.Opens(rec.out, nil)
		if want := map[bool]int{true: 1, false: 0}[tickets]; n != want {
			t.Fatalf("#%d: %d records under the server's secret; want %d", i, n, want)
		}
		c.UpdateAfter = c.Out.Seq() + 2

		// Client to server.
		msg := bytes.Repeat([]byte("client says hello "), 2000) // more than two records
		go func() { _, err := cli.Write(msg); errc <- err }()
		var got, pend []byte
		buf := make([]byte, 4096)
		for len(got) < len(msg) {
			k, err := srvRaw.Read(buf)
			if err != nil {
				t.Fatalf("#%d: raw read: %v", i, err)
			}
			pend = append(pend, buf[:k]...)
			m, out, err := c.Decrypt(got, pend)
			if err != nil {
				t.Fatalf("#%d: Decrypt: %v", i, err)
			}
			got, pend = out, pend[m:]
		}
		if err := <-errc; err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("#%d: server got %d bytes (write error %v); want %d", i, len(got), err, len(msg))
		}

		// Server to client: five records, a KeyUpdate among them.
		var wire []byte
		var want []byte
		for j := range 5 {
			p := []byte(strings.Repeat(string(rune('a'+j)), 1000))
			want = append(want, p...)
			var err error
			if wire, err = c.Encrypt(wire, p); err != nil {
				t.Fatal(err)
			}
		}
		go func() { _, err := srvRaw.Write(wire); errc <- err }()
		read := make([]byte, len(want))
		if _, err := io.ReadFull(cli, read); err != nil || !bytes.Equal(read, want) {
			t.Fatalf("#%d: client read %v; equal %v", i, err, bytes.Equal(read, want))
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}

		// close_notify both ways.
		go func() { errc <- cli.Close() }()
		for {
			k, err := srvRaw.Read(buf)
			if err != nil {
				t.Fatalf("#%d: raw read: %v", i, err)
			}
			pend = append(pend, buf[:k]...)
			m, _, err := c.Decrypt(nil, pend)
			pend = pend[m:]
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("#%d: Decrypt: %v; want io.EOF", i, err)
			}
		}
		<-errc
		srvRaw.Close()
	}
}
