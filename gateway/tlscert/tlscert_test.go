package tlscert

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgate/upgate/internal/testcert"
)

// client returns a client config that sends sni and accepts any server
// certificate: the tests check which one the server chose.
func client(sni string) *tls.Config {
	return &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
}

func TestSNI(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	dir := t.TempDir()
	pairs := []Pair{
		pairOf(ca.WritePair(t, dir, "default", testcert.Leaf{CommonName: "default", Names: []string{"default.test"}})),
		pairOf(ca.WritePair(t, dir, "api", testcert.Leaf{CommonName: "api", Names: []string{"api.example.com"}})),
		pairOf(ca.WritePair(t, dir, "wild", testcert.Leaf{CommonName: "wild", Names: []string{"*.example.com", "example.com"}})),
		pairOf(ca.WritePair(t, dir, "ecdsa", testcert.Leaf{CommonName: "ecdsa", Names: []string{"dual.test"}})),
		pairOf(ca.WritePair(t, dir, "rsa", testcert.Leaf{CommonName: "rsa", Names: []string{"dual.test"}, RSA: true})),
	}
	cases := []struct {
		sni     string
		refuse  bool
		rsaOnly bool // the client accepts only RSA certificates
		want    string
	}{
		{sni: "api.example.com", want: "api"},
		{sni: "API.Example.COM.", want: "api"},
		{sni: "www.example.com", want: "wild"},
		{sni: "example.com", want: "wild"},
		{sni: "a.b.example.com", want: "default"},
		{sni: "default.test", want: "default"},
		{sni: "other.test", want: "default"},
		{sni: "", want: "default"},
		{sni: "dual.test", want: "ecdsa"},
		{sni: "dual.test", rsaOnly: true, want: "rsa"},
		{sni: "api.example.com", refuse: true, want: "api"},
		{sni: "www.example.com", refuse: true, want: "wild"},
		{sni: "other.test", refuse: true, want: ""},
		{sni: "a.b.example.com", refuse: true, want: ""},
		{sni: "", refuse: true, want: ""},
	}
	for i, c := range cases {
		s, err := New(Options{Pairs: pairs, RefuseUnknownSNI: c.refuse})
		if err != nil {
			t.Fatalf("#%d: New: %v", i, err)
		}
		cc := client(c.sni)
		if c.rsaOnly {
			cc.MaxVersion = tls.VersionTLS12
			cc.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
		}
		r := handshake(t, s.TLSConfig(), cc)
		if c.want == "" {
			if r.serverErr == nil || !errors.Is(r.serverErr, ErrUnknownServerName) {
				t.Errorf("#%d: sni %q refused: got server error %v; want %v", i, c.sni, r.serverErr, ErrUnknownServerName)
			}
			if r.clientErr == nil {
				t.Errorf("#%d: sni %q refused: got no client error; want one", i, c.sni)
			}
			continue
		}
		if r.serverErr != nil || r.clientErr != nil {
			t.Errorf("#%d: sni %q: got errors %v, %v; want none", i, c.sni, r.serverErr, r.clientErr)
			continue
		}
		if r.cn != c.want {
			t.Errorf("#%d: sni %q: got certificate %q; want %q", i, c.sni, r.cn, c.want)
		}
		if r.alpn != "http/1.1" {
			t.Errorf("#%d: sni %q: got ALPN %q; want http/1.1", i, c.sni, r.alpn)
		}
	}
}

func TestClientCertificates(t *testing.T) {
	ca, other := testcert.NewCA(t, "client CA"), testcert.NewCA(t, "other CA")
	dir := t.TempDir()
	pair := pairOf(ca.WritePair(t, dir, "server", testcert.Leaf{CommonName: "server", Names: []string{"server.test"}}))
	caFile := testcert.Write(t, dir, "clients.pem", ca.PEM)
	good := ca.Certificate(t, testcert.Leaf{Client: true, CommonName: "alice"})
	foreign := other.Certificate(t, testcert.Leaf{Client: true, CommonName: "mallory"})
	expired := ca.Certificate(t, testcert.Leaf{Client: true, CommonName: "bob", NotAfter: time.Now().Add(-time.Hour)})
	cases := []struct {
		name    string
		certs   []tls.Certificate
		max     uint16
		wantErr string // in the server's error; "" for success
	}{
		{"signed by the CA, TLS 1.3", []tls.Certificate{good}, 0, ""},
		{"signed by the CA, TLS 1.2", []tls.Certificate{good}, tls.VersionTLS12, ""},
		{"signed by another CA", []tls.Certificate{foreign}, 0, "unknown authority"},
		{"expired", []tls.Certificate{expired}, 0, "expired"},
		{"none", nil, 0, "certificate"},
		{"none, TLS 1.2", nil, tls.VersionTLS12, "certificate"},
	}
	s, err := New(Options{Pairs: []Pair{pair}, ClientCA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		cc := client("server.test")
		certs := c.certs
		// Sent even when the server's list of CAs does not name its issuer.
		cc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if len(certs) == 0 {
				return &tls.Certificate{}, nil
			}
			return &certs[0], nil
		}
		cc.MaxVersion = c.max
		r := handshake(t, s.TLSConfig(), cc)
		if c.wantErr == "" {
			if r.serverErr != nil || r.clientErr != nil {
				t.Errorf("#%d: %s: got errors %v, %v; want none", i, c.name, r.serverErr, r.clientErr)
			}
			continue
		}
		if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), c.wantErr) {
			t.Errorf("#%d: %s: got server error %v; want one containing %q", i, c.name, r.serverErr, c.wantErr)
		}
		if r.clientErr == nil {
			t.Errorf("#%d: %s: got no client error; want the refusal", i, c.name)
		}
	}
}

func TestMinVersion(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	pair := pairOf(ca.WritePair(t, t.TempDir(), "server", testcert.Leaf{CommonName: "server", Names: []string{"server.test"}}))
	cases := []struct {
		min, clientMax uint16
		want           uint16 // negotiated version; 0 for a refusal
	}{
		{0, 0, tls.VersionTLS13},
		{0, tls.VersionTLS12, tls.VersionTLS12},
		{tls.VersionTLS12, tls.VersionTLS11, 0},
		{tls.VersionTLS13, tls.VersionTLS12, 0},
		{tls.VersionTLS13, 0, tls.VersionTLS13},
	}
	for i, c := range cases {
		s, err := New(Options{Pairs: []Pair{pair}, MinVersion: c.min})
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		cc := client("server.test")
		cc.MaxVersion = c.clientMax
		if c.clientMax != 0 && c.clientMax < tls.VersionTLS12 {
			cc.MinVersion = c.clientMax
		}
		r := handshake(t, s.TLSConfig(), cc)
		if c.want == 0 {
			if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "version") {
				t.Errorf("#%d: min %x, client max %x: got server error %v; want a version refusal", i, c.min, c.clientMax, r.serverErr)
			}
			continue
		}
		if r.serverErr != nil || r.clientErr != nil || r.version != c.want {
			t.Errorf("#%d: min %x, client max %x: got version %x, errors %v, %v; want %x", i, c.min, c.clientMax, r.version, r.serverErr, r.clientErr, c.want)
		}
	}
	if _, err := New(Options{Pairs: []Pair{pair}, MinVersion: tls.VersionTLS11}); !errors.Is(err, ErrVersion) {
		t.Errorf("MinVersion 1.1: got %v; want %v", err, ErrVersion)
	}
}

func TestLoadErrors(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	dir := t.TempDir()
	good := pairOf(ca.WritePair(t, dir, "good", testcert.Leaf{CommonName: "good", Names: []string{"good.test"}}))
	other := pairOf(ca.WritePair(t, dir, "other", testcert.Leaf{CommonName: "other", Names: []string{"other.test"}}))
	garbage := testcert.Write(t, dir, "garbage.pem", []byte("not PEM at all\n"))
	keyOnly := testcert.Write(t, dir, "keyonly.pem", mustRead(t, good.Key))
	badDER := testcert.Write(t, dir, "bad.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		opts  Options
		kind  string
		index int
		path  string
		err   error  // errors.Is, when not nil
		text  string // in the message
	}{
		{Options{Pairs: []Pair{good, {Cert: missing, Key: good.Key}}}, KindCert, 1, missing, os.ErrNotExist, "no such file"},
		{Options{Pairs: []Pair{{Cert: good.Cert, Key: missing}}}, KindKey, 0, missing, os.ErrNotExist, "no such file"},
		{Options{Pairs: []Pair{{Cert: garbage, Key: good.Key}}}, KindCert, 0, garbage, ErrNoCertificate, "no PEM CERTIFICATE block"},
		{Options{Pairs: []Pair{{Cert: keyOnly, Key: good.Key}}}, KindCert, 0, keyOnly, ErrNoCertificate, "no PEM CERTIFICATE block"},
		{Options{Pairs: []Pair{{Cert: badDER, Key: good.Key}}}, KindCert, 0, badDER, nil, "certificate 1 of the file"},
		{Options{Pairs: []Pair{{Cert: good.Cert, Key: garbage}}}, KindKey, 0, garbage, nil, "PEM data"},
		{Options{Pairs: []Pair{good, {Cert: good.Cert, Key: other.Key}}}, KindKey, 1, other.Key, ErrKeyMismatch, "does not match the certificate in " + good.Cert},
		{Options{Pairs: []Pair{good}, ClientCA: missing}, KindClientCA, 0, missing, os.ErrNotExist, "client CA " + missing},
		{Options{Pairs: []Pair{good}, ClientCA: garbage}, KindClientCA, 0, garbage, ErrNoCertificate, "client CA"},
	}
	for i, c := range cases {
		_, err := New(c.opts)
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Errorf("#%d: got %v; want a *FileError", i, err)
			continue
		}
		if fe.Kind != c.kind || fe.Index != c.index || fe.Path != c.path {
			t.Errorf("#%d: got %s %d %s; want %s %d %s", i, fe.Kind, fe.Index, fe.Path, c.kind, c.index, c.path)
		}
		if c.err != nil && !errors.Is(err, c.err) {
			t.Errorf("#%d: got %v; want it to wrap %v", i, err, c.err)
		}
		if !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("#%d: got %q; want it to name %s and contain %q", i, err, c.path, c.text)
		}
	}
	if _, err := New(Options{}); !errors.Is(err, ErrNoPairs) {
		t.Errorf("no pairs: got %v; want %v", err, ErrNoPairs)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
