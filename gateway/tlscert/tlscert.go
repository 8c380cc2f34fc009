// Package tlscert holds the certificates of the gateway's TLS listener: it
// loads certificate and key pairs from PEM files, builds the server's
// *tls.Config (certificate chosen by SNI, optional client certificates),
// reloads the files on demand or when they change, and reports what it
// serves for metrics. It is plain Go: the event loops drive crypto/tls with
// the *tls.Config it returns.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors.
var (
	// ErrNoPairs: Options.Pairs is empty.
	ErrNoPairs = errors.New("tlscert: no certificate and key pair")
	// ErrNoCertificate: a certificate file holds no PEM CERTIFICATE block.
	ErrNoCertificate = errors.New("tlscert: no PEM CERTIFICATE block")
	// ErrKeyMismatch: a key file's private key is not the certificate's.
	ErrKeyMismatch = errors.New("tlscert: private key does not match the certificate")
	// ErrUnknownServerName: a client asked for a name no certificate
	// covers, and Options.RefuseUnknownSNI is set.
	ErrUnknownServerName = errors.New("tlscert: no certificate for the server name")
	// ErrVersion: Options.MinVersion is neither TLS 1.2 nor TLS 1.3.
	ErrVersion = errors.New("tlscert: minimum version must be TLS 1.2 or TLS 1.3")
)

// Pair names a PEM certificate chain file (leaf first) and the PEM file of
// its private key (PKCS #1, PKCS #8 or SEC 1; RSA, ECDSA or Ed25519).
type Pair struct {
	Cert string
	Key  string
}

// Options configure a Store.
type Options struct {
	// Pairs are the certificates served; the first is the default, served
	// to a client whose server name (SNI) no certificate covers.
	Pairs []Pair
	// ClientCA, when set, is a PEM file of the certificate authorities
	// that sign client certificates: every client must then present a
	// certificate they signed (mutual TLS).
	ClientCA string
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13; zero means
	// TLS 1.2.
	MinVersion uint16
	// RefuseUnknownSNI fails the handshake of a client whose server name
	// no certificate covers, or that sends none, instead of serving the
	// default certificate.
	RefuseUnknownSNI bool
}

// FileError says which file could not be loaded and why.
type FileError struct {
	Kind  string // "certificate", "key" or "client CA"
	Index int    // the pair's index in Options.Pairs; 0 for the client CA
	Path  string
	Err   error
}

func (e *FileError) Error() string {
	if e.Kind == KindClientCA {
		return fmt.Sprintf("tlscert: client CA %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("tlscert: %s %d (%s): %v", e.Kind, e.Index, e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Kinds of FileError.
const (
	KindCert     = "certificate"
	KindKey      = "key"
	KindClientCA = "client CA"
)

// Info describes one loaded certificate, for metrics and logs.
type Info struct {
	// Name is the certificate's first DNS name, else its subject's common
	// name, else its file's base name: the label of its expiry gauge.
	Name     string
	Index    int    // position in Options.Pairs
	Cert     string // certificate file
	Key      string // key file
	DNSNames []string
	NotAfter time.Time
}

// Stats counts reloads, for metrics.
type Stats struct {
	Reloads     uint64    // reload attempts since New
	Failures    uint64    // of which failed
	LastReload  time.Time // latest attempt; zero before the first
	LastSuccess time.Time // latest success, or New's load
	LastError   string    // the latest attempt's error, "" when it succeeded
}

// Store serves certificates to TLS handshakes and reloads them. Its methods
// may be called from any goroutine.
type Store struct {
	opts Options
	cur  atomic.Pointer[snapshot]
	base *tls.Config

	mu    sync.Mutex // serializes loads; guards stats and seen
	stats Stats
	seen  []fingerprint // of every file, as the latest load attempt saw them
}

// snapshot is one load's certificates and the config built on them.
type snapshot struct {
	certs  []*tls.Certificate // in the order of Options.Pairs
	exact  map[string][]int   // lower-case DNS name → indexes in certs
	wild   map[string][]int   // "example.com" for "*.example.com" → indexes
	infos  []Info
	config *tls.Config
}

// New loads every file of opts and returns the Store, or the first
// loading error (a *FileError for a file).
func New(opts Options) (*Store, error) {
	if len(opts.Pairs) == 0 {
		return nil, ErrNoPairs
	}
	switch opts.MinVersion {
	case 0:
		opts.MinVersion = tls.VersionTLS12
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return nil, ErrVersion
	}
	opts.Pairs = append([]Pair(nil), opts.Pairs...)
	s := &Store{opts: opts}
	snap, seen, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur.Store(snap)
	s.seen = seen
	s.stats.LastSuccess = time.Now()
	s.base = &tls.Config{
		MinVersion: opts.MinVersion,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().config, nil
		},
	}
	return s, nil
}

// TLSConfig returns the server's configuration. Each handshake takes the
// certificates, client CAs and settings of the latest successful load;
// session ticket keys stay those of this config across reloads. The
// caller must not modify it.
func (s *Store) TLSConfig() *tls.Config { return s.base }

// Reload reads every file again. On success new handshakes get the new
// certificates and client CAs; on failure the Store keeps serving the old
// ones and the error (a *FileError for a file) says which file and why.
// Handshakes in progress and established connections are untouched.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Store) reloadLocked() error {
	snap, seen, err := s.load()
	now := time.Now()
	s.seen = seen
	s.stats.Reloads++
	s.stats.LastReload = now
	if err != nil {
		s.stats.Failures++
		s.stats.LastError = err.Error()
		return err
	}
	s.cur.Store(snap)
	s.stats.LastSuccess = now
	s.stats.LastError = ""
	return nil
}

// Certificates describes the certificates being served, in the order of
// Options.Pairs.
func (s *Store) Certificates() []Info {
	infos := s.cur.Load().infos
	out := make([]Info, len(infos))
	copy(out, infos)
	return out
}

// Stats returns the reload counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// load reads every file into a new snapshot. seen is the files'
// fingerprints, taken before they are read, even when loading fails.
func (s *Store) load() (*snapshot, []fingerprint, error) {
	seen := s.fingerprints()
	snap := &snapshot{exact: map[string][]int{}, wild: map[string][]int{}}
	for i, p := range s.opts.Pairs {
		c, err := loadPair(i, p)
		if err != nil {
			return nil, seen, err
		}
		snap.add(i, p, c)
	}
	cfg := &tls.Config{
		MinVersion:     s.opts.MinVersion,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: snap.certificate(s.opts.RefuseUnknownSNI),
	}
	if s.opts.ClientCA != "" {
		pool, err := loadCA(s.opts.ClientCA)
		if err != nil {
			return nil, seen, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	snap.config = cfg
	return snap, seen, nil
}

// loadPair reads and checks pair i.
func loadPair(i int, p Pair) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(p.Cert)
	if err != nil {
		return nil, &FileError{Kind: KindCert, Index: i, Path: p.Cert, Err: unwrapPath(err)}
	}
	if err := checkCerts(certPEM); err != nil {
		return nil, &FileError{Kind: KindCert, Index: i, Path: p.Cert, Err: err}
	}
	keyPEM, err := os.ReadFile(p.Key)
	if err != nil {
		return nil, &FileError{Kind: KindKey, Index: i, Path: p.Key, Err: unwrapPath(err)}
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			err = fmt.Errorf("%w in %s", ErrKeyMismatch, p.Cert)
		} else {
			err = errors.New(strings.TrimPrefix(err.Error(), "tls: "))
		}
		return nil, &FileError{Kind: KindKey, Index: i, Path: p.Key, Err: err}
	}
	if c.Leaf == nil { // filled in by X509KeyPair unless GODEBUG x509keypairleaf=0
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, &FileError{Kind: KindCert, Index: i, Path: p.Cert, Err: err}
		}
	}
	return &c, nil
}

// checkCerts checks that data holds certificates and that they parse, so
// that a certificate file's mistakes are reported against it.
func checkCerts(data []byte) error {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		n++
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d of the file: %w", n, err)
		}
	}
	if n == 0 {
		return ErrNoCertificate
	}
	return nil
}

// loadCA reads a PEM file of CA certificates into a pool.
func loadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Kind: KindClientCA, Path: path, Err: unwrapPath(err)}
	}
	if err := checkCerts(data); err != nil {
		return nil, &FileError{Kind: KindClientCA, Path: path, Err: err}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(data)
	return pool, nil
}

// add indexes certificate c of pair i under its DNS names.
func (snap *snapshot) add(i int, p Pair, c *tls.Certificate) {
	leaf := c.Leaf
	idx := len(snap.certs)
	snap.certs = append(snap.certs, c)
	for _, name := range leaf.DNSNames {
		name = normalizeName(name)
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			snap.wild[rest] = append(snap.wild[rest], idx)
		} else {
			snap.exact[name] = append(snap.exact[name], idx)
		}
	}
	name := filepath.Base(p.Cert)
	switch {
	case len(leaf.DNSNames) > 0:
		name = leaf.DNSNames[0]
	case leaf.Subject.CommonName != "":
		name = leaf.Subject.CommonName
	}
	snap.infos = append(snap.infos, Info{
		Name: name, Index: i, Cert: p.Cert, Key: p.Key,
		DNSNames: append([]string(nil), leaf.DNSNames...), NotAfter: leaf.NotAfter,
	})
}

// certificate returns the GetCertificate of the snapshot: an exact name
// wins over a wildcard, which covers one label ("*.example.com" covers
// "a.example.com", neither "example.com" nor "a.b.example.com"). Among
// the certificates of a name, the first that the client supports (ECDSA
// or RSA, by its signature algorithms) is chosen, else the first.
func (snap *snapshot) certificate(refuse bool) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := normalizeName(hello.ServerName)
		cands := snap.exact[name]
		if len(cands) == 0 {
			if i := strings.IndexByte(name, '.'); i > 0 {
				cands = snap.wild[name[i+1:]]
			}
		}
		if len(cands) == 0 {
			if refuse {
				if name == "" {
					return nil, fmt.Errorf("%w: the client sent none", ErrUnknownServerName)
				}
				return nil, fmt.Errorf("%w %q", ErrUnknownServerName, name)
			}
			return snap.certs[0], nil
		}
		for _, i := range cands {
			if hello.SupportsCertificate(snap.certs[i]) == nil {
				return snap.certs[i], nil
			}
		}
		return snap.certs[cands[0]], nil
	}
}

// normalizeName lower-cases a DNS name and drops a final dot.
func normalizeName(s string) string {
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// unwrapPath drops the path an *os.PathError repeats: FileError says it.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
