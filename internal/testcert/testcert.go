// Package testcert makes certificates for the tests of the module: a test
// certificate authority and the leaf certificates it signs (ECDSA P-256 or
// RSA 2048), for servers and for clients (mutual TLS), with the names and
// validity a test asks for, so that an expired or not yet valid one can be
// made too.
// It writes them as PEM files for the programs and configurations that
// read files, and gives what clients need to trust them: a
// *x509.CertPool, or the SHA-256 of the leaf's public key that Chromium's
// --ignore-certificate-errors-spki-list takes. It imports nothing from the
// module.
package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Default validity: from an hour ago (a little clock skew between the test
// and what it starts is harmless) to a day from now.
const (
	DefaultBefore = time.Hour
	DefaultAfter  = 24 * time.Hour
)

// CA is a certificate authority made for a test.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// PEM is Cert, PEM-encoded.
	PEM []byte
}

// Leaf describes a certificate for CA.Issue.
type Leaf struct {
	// Names are the certificate's subject alternative names: each one that
	// parses as an IP address is an IP address, the others DNS names. The
	// first is the common name too, unless CommonName is set.
	Names []string
	// CommonName, when set, is the subject's common name instead of
	// Names[0] (a name no SAN repeats, as some tests of name choice want).
	CommonName string
	// NotBefore and NotAfter bound the validity; zero means DefaultBefore
	// ago and DefaultAfter from now.
	NotBefore, NotAfter time.Time
	// Client makes a certificate for client authentication (mutual TLS)
	// rather than for a server.
	Client bool
	// RSA gives the certificate an RSA 2048 key rather than ECDSA P-256.
	RSA bool
}

// Cert is a leaf certificate with its key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer // *ecdsa.PrivateKey, or *rsa.PrivateKey with Leaf.RSA
	// CertPEM and KeyPEM are Cert and Key (PKCS #8), PEM-encoded.
	CertPEM, KeyPEM []byte
	// TLS is the certificate for tls.Config.Certificates.
	TLS tls.Certificate
}

// serial returns a random positive serial number.
func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

// NewCA makes a certificate authority named cn, valid from DefaultBefore
// ago to DefaultAfter from now.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-DefaultBefore),
		NotAfter:              now.Add(DefaultAfter),
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
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Issue makes a leaf certificate signed by ca.
func (ca *CA) Issue(t testing.TB, l Leaf) *Cert {
	t.Helper()
	var key crypto.Signer
	var err error
	if l.RSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-DefaultBefore)
		if !l.NotAfter.IsZero() && !tmpl.NotBefore.Before(l.NotAfter) {
			tmpl.NotBefore = l.NotAfter.Add(-time.Hour) // an expired one
		}
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(DefaultAfter)
	}
	if l.RSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment // RSA key exchange (TLS 1.2)
	}
	if l.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	tmpl.Subject.CommonName = l.CommonName
	if l.CommonName == "" && len(l.Names) > 0 {
		tmpl.Subject.CommonName = l.Names[0]
	}
	for _, n := range l.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
	}
}

// Pool returns a pool holding ca alone, for tls.Config.RootCAs (a client
// trusting ca) or ClientCAs (a server trusting ca's client certificates).
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// ClientConfig returns a client configuration trusting ca alone and
// expecting serverName.
func (ca *CA) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), ServerName: serverName}
}

// WriteFile writes ca's certificate to dir as name and returns its path.
// An empty dir means a new temporary directory of t.
func (ca *CA) WriteFile(t testing.TB, dir, name string) string {
	t.Helper()
	return write(t, dir, name, ca.PEM)
}

// ServerConfig returns a server configuration serving c.
func (c *Cert) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}}
}

// SPKIHash returns the base64 of the SHA-256 of c's SubjectPublicKeyInfo:
// what HPKP pins were, and what Chromium's
// --ignore-certificate-errors-spki-list takes.
func (c *Cert) SPKIHash() string {
	sum := sha256.Sum256(c.Cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// WriteFiles writes c's certificate and key to dir as name.pem and
// name.key (the key readable by its owner only) and returns their paths.
// An empty dir means a new temporary directory of t.
func (c *Cert) WriteFiles(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return write(t, dir, name+".pem", c.CertPEM), write(t, dir, name+".key", c.KeyPEM)
}

// Write writes data to dir/name, readable by its owner only, and returns
// the path. An empty dir means a new temporary directory of t.
func Write(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	return write(t, dir, name, data)
}

// Certificate returns a certificate for l signed by ca, for
// tls.Config.Certificates.
func (ca *CA) Certificate(t testing.TB, l Leaf) tls.Certificate {
	t.Helper()
	return ca.Issue(t, l).TLS
}

// WritePair writes a certificate for l signed by ca, and its key, to dir
// as name.pem and name.key and returns their paths.
func (ca *CA) WritePair(t testing.TB, dir, name string, l Leaf) (certFile, keyFile string) {
	t.Helper()
	return ca.Issue(t, l).WriteFiles(t, dir, name)
}

// LocalhostLeaf describes a server certificate for localhost, 127.0.0.1
// and ::1.
func LocalhostLeaf() Leaf { return Leaf{Names: []string{"localhost", "127.0.0.1", "::1"}} }

// write writes data to dir/name and returns the path.
func write(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Localhost makes a CA and a server certificate it signs for localhost,
// 127.0.0.1 and ::1: what a test serving on the loopback needs.
func Localhost(t testing.TB) (*CA, *Cert) {
	t.Helper()
	ca := NewCA(t, "upgate test CA")
	return ca, ca.Issue(t, LocalhostLeaf())
}
