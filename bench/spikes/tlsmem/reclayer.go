package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// expandLabel is HKDF-Expand-Label from RFC 8446, Section 7.1.
func expandLabel(h func() hash.Hash, secret []byte, label string, context []byte, n int) []byte {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full)+len(context))
	info = append(info, byte(n>>8), byte(n), byte(len(full)))
	info = append(info, full...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		panic(err)
	}
	return out
}

func suiteParams(suite uint16) (h func() hash.Hash, keyLen int) {
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		return sha256.New, 16
	case tls.TLS_AES_256_GCM_SHA384:
		return sha512.New384, 32
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return sha256.New, 32
	}
	panic(fmt.Sprintf("unsupported suite %x", suite))
}

// half is one direction of a TLS 1.3 record layer.
type half struct {
	aead   cipher.AEAD
	iv     [12]byte
	seq    uint64
	suite  uint16
	key    []byte
	secret []byte // kept for KeyUpdate ("traffic upd")
}

// ensure rebuilds the AEAD from the key when it was dropped while idle.
func (hs *half) ensure() {
	if hs.aead == nil {
		hs.aead = newAEAD(hs.suite, hs.key)
	}
}

func newAEAD(suite uint16, key []byte) cipher.AEAD {
	if suite == tls.TLS_CHACHA20_POLY1305_SHA256 {
		a, err := chacha20poly1305.New(key)
		if err != nil {
			panic(err)
		}
		return a
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

func newHalf(suite uint16, secret []byte) *half {
	hs := &half{suite: suite}
	hs.setSecret(secret)
	return hs
}

func (hs *half) setSecret(secret []byte) {
	h, keyLen := suiteParams(hs.suite)
	key := expandLabel(h, secret, "key", nil, keyLen)
	iv := expandLabel(h, secret, "iv", nil, 12)
	hs.aead = newAEAD(hs.suite, key)
	hs.key = key
	copy(hs.iv[:], iv)
	hs.secret = secret
	hs.seq = 0
}

// keyUpdate rolls the secret forward (RFC 8446, Section 7.2).
func (hs *half) keyUpdate() {
	h, _ := suiteParams(hs.suite)
	hs.setSecret(expandLabel(h, hs.secret, "traffic upd", nil, h().Size()))
}

func (hs *half) nonce() []byte {
	var n [12]byte
	n = hs.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], hs.seq)
	for i := range 8 {
		n[4+i] ^= s[i]
	}
	return n[:]
}

// seal appends one protected record (TLSInnerPlaintext = payload || type).
func (hs *half) seal(dst []byte, typ byte, payload []byte) []byte {
	hs.ensure()
	n := len(payload) + 1 + hs.aead.Overhead()
	hdr := []byte{23, 3, 3, byte(n >> 8), byte(n)}
	inner := append(append([]byte{}, payload...), typ)
	dst = append(dst, hdr...)
	dst = hs.aead.Seal(dst, hs.nonce(), inner, hdr)
	hs.seq++
	return dst
}

var errBadRecord = errors.New("bad record")

// open decrypts one complete record; on failure seq is not advanced.
func (hs *half) open(rec []byte) (typ byte, data []byte, err error) {
	if len(rec) < 5 || rec[0] != 23 {
		return 0, nil, errBadRecord
	}
	hs.ensure()
	pt, err := hs.aead.Open(nil, hs.nonce(), rec[5:], rec[:5])
	if err != nil {
		return 0, nil, err
	}
	hs.seq++
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, nil, errBadRecord
	}
	return pt[i], pt[:i], nil
}

// splitRecords splits a byte stream into complete records.
func splitRecords(b []byte) (recs [][]byte, rest []byte) {
	for len(b) >= 5 {
		n := 5 + int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < n {
			break
		}
		recs = append(recs, b[:n])
		b = b[n:]
	}
	return recs, b
}
