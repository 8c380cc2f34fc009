package tlscert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a certificate authority made for a test.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

var serial int64

func nextSerial() *big.Int {
	serial++
	return big.NewInt(serial)
}

func newCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf describes a certificate for issue.
type leaf struct {
	cn       string
	names    []string
	client   bool      // for client authentication rather than a server
	rsa      bool      // an RSA 2048 key rather than ECDSA P-256
	notAfter time.Time // zero: in a day
}

// issue returns the PEM certificate and key of l, signed by ca.
func (ca *testCA) issue(t *testing.T, l leaf) (certPEM, keyPEM []byte) {
	t.Helper()
	var key crypto.Signer
	var err error
	if l.rsa {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	notAfter := l.notAfter
	if notAfter.IsZero() {
		notAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: l.cn},
		DNSNames:     l.names,
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if l.rsa {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if l.client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// write writes data to dir/name and returns the path.
func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writePair writes l's certificate and key into dir as name.pem and
// name.key.
func (ca *testCA) writePair(t *testing.T, dir, name string, l leaf) Pair {
	t.Helper()
	c, k := ca.issue(t, l)
	return Pair{Cert: write(t, dir, name+".pem", c), Key: write(t, dir, name+".key", k)}
}

// clientCert returns a client certificate for tls.Config.Certificates.
func (ca *testCA) clientCert(t *testing.T, l leaf) tls.Certificate {
	t.Helper()
	l.client = true
	c, k := ca.issue(t, l)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// result is the outcome of one handshake.
type result struct {
	serverErr, clientErr error
	cn                   string // the server certificate's common name, as the client saw it
	alpn                 string
	version              uint16
}

// handshake runs a TLS handshake between server and client over net.Pipe,
// then a one-byte exchange so that a client refused after its own
// handshake completed (TLS 1.3 client certificates) sees the refusal.
func handshake(t *testing.T, server, client *tls.Config) result {
	t.Helper()
	sc, cc := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	sc.SetDeadline(deadline)
	cc.SetDeadline(deadline)
	srv, cli := tls.Server(sc, server), tls.Client(cc, client)
	serr := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err == nil {
			_, err = srv.Write([]byte{1})
		}
		serr <- err
		sc.Close() // not srv.Close: both close_notify writes would block on the pipe
	}()
	var r result
	r.clientErr = cli.Handshake()
	if r.clientErr == nil {
		st := cli.ConnectionState()
		r.cn = st.PeerCertificates[0].Subject.CommonName
		r.alpn = st.NegotiatedProtocol
		r.version = st.Version
		_, r.clientErr = cli.Read(make([]byte, 1))
	}
	cc.Close()
	r.serverErr = <-serr
	return r
}
