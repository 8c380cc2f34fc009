package tlsrec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"hash"
	"math"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
)

// Record sizes (RFC 8446 §5.1, §5.2).
const (
	// HeaderLen is the length of a record header.
	HeaderLen = 5
	// MaxPlaintext is the most content a record may carry (2^14).
	MaxPlaintext = 1 << 14
	// MaxCiphertext is the longest protected record body (2^14 + 256).
	MaxCiphertext = MaxPlaintext + 256
	// TagLen is the length of the authentication tag of every suite.
	TagLen = 16
	// Overhead is what Seal adds to a payload: a header, the content type
	// and the tag (Seal adds no padding).
	Overhead = HeaderLen + 1 + TagLen
)

// ContentType is a record's content type.
type ContentType uint8

// Content types (RFC 8446 §5.1).
const (
	TypeChangeCipherSpec ContentType = 20
	TypeAlert            ContentType = 21
	TypeHandshake        ContentType = 22
	TypeApplicationData  ContentType = 23
)

const ivLen = 12

// Half is one direction of a connection's record protection: a traffic
// secret, the key and IV derived from it, a sequence number and, while
// records flow, the AEAD. The zero Half is unusable until Init. Not safe
// for concurrent use.
type Half struct {
	aead  cipher.AEAD // nil until needed, or after Release
	seq   uint64
	suite uint16
	klen  uint8
	slen  uint8
	iv    [ivLen]byte
	nonce [ivLen]byte // per-record nonce; a field, so that the AEAD call does not make it escape
	key   [32]byte
	sec   [48]byte
}

// suiteParams returns a TLS 1.3 suite's hash and key length.
func suiteParams(suite uint16) (func() hash.Hash, int, bool) {
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		return sha256.New, 16, true
	case tls.TLS_AES_256_GCM_SHA384:
		return sha512.New384, 32, true
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return sha256.New, 32, true
	}
	return nil, 0, false
}

// Supported reports whether suite is a TLS 1.3 suite Half can run.
func Supported(suite uint16) bool {
	_, _, ok := suiteParams(suite)
	return ok
}

// expandLabel is HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) ([]byte, error) {
	const prefix = "tls13 "
	info := make([]byte, 0, 4+len(prefix)+len(label))
	info = append(info, byte(n>>8), byte(n), byte(len(prefix)+len(label)))
	info = append(info, prefix...)
	info = append(info, label...)
	info = append(info, 0) // context: empty
	return hkdf.Expand(h, secret, string(info), n)
}

// Init sets the half to a traffic secret of suite, sequence number 0. The
// secret's length is the suite's hash length.
func (h *Half) Init(suite uint16, secret []byte) error {
	hf, klen, ok := suiteParams(suite)
	if !ok {
		return ErrSuite
	}
	if len(secret) != hf().Size() {
		return ErrSecret
	}
	key, err := expandLabel(hf, secret, "key", klen)
	if err != nil {
		return err
	}
	iv, err := expandLabel(hf, secret, "iv", ivLen)
	if err != nil {
		return err
	}
	*h = Half{suite: suite, klen: uint8(klen), slen: uint8(len(secret))}
	copy(h.key[:], key)
	copy(h.iv[:], iv)
	copy(h.sec[:], secret)
	return nil
}

// Seq returns the sequence number of the next record.
func (h *Half) Seq() uint64 { return h.seq }

// SetSeq sets the sequence number of the next record: the records the
// handshake already protected with this secret.
func (h *Half) SetSeq(seq uint64) { h.seq = seq }

// Update moves the half to the next traffic secret, as a KeyUpdate does
// (RFC 8446 §7.2: application_traffic_secret_N+1 =
// HKDF-Expand-Label(application_traffic_secret_N, "traffic upd", "",
// Hash.length)); the sequence number restarts at 0.
func (h *Half) Update() error {
	hf, _, _ := suiteParams(h.suite)
	next, err := expandLabel(hf, h.sec[:h.slen], "traffic upd", int(h.slen))
	if err != nil {
		return err
	}
	return h.Init(h.suite, next)
}

// Holding reports whether the half holds its AEAD.
func (h *Half) Holding() bool { return h.aead != nil }

// Release drops the AEAD; the next record rebuilds it from the key.
func (h *Half) Release() { h.aead = nil }

// ensure builds the AEAD if needed.
func (h *Half) ensure() error {
	if h.aead != nil {
		return nil
	}
	key := h.key[:h.klen]
	if h.suite == tls.TLS_CHACHA20_POLY1305_SHA256 {
		a, err := chacha20poly1305.New(key)
		if err != nil {
			return err
		}
		h.aead = a
		return nil
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return err
	}
	h.aead = a
	return nil
}

// setNonce makes the nonce of the current record: the IV XOR the
// sequence number, left-padded (RFC 8446 §5.3).
func (h *Half) setNonce() {
	h.nonce = h.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], h.seq)
	for i := range s {
		h.nonce[ivLen-8+i] ^= s[i]
	}
}

// Seal appends to dst one record protecting payload as content of type
// typ. len(payload) must not exceed MaxPlaintext. dst with room for
// len(payload)+Overhead more bytes is not reallocated.
func (h *Half) Seal(dst []byte, typ ContentType, payload []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0)
	dst = append(dst, payload...)
	return h.SealTail(dst, start, typ)
}

// SealTail protects dst[start+HeaderLen:] in place as one record of type
// typ, whose header goes to dst[start:start+HeaderLen] (reserved by the
// caller), and returns dst extended by the content type and the tag. It
// lets a caller assemble the content from several pieces without a copy.
func (h *Half) SealTail(dst []byte, start int, typ ContentType) ([]byte, error) {
	n := len(dst) - start - HeaderLen
	if n < 0 || n > MaxPlaintext {
		return dst, ErrTooLong
	}
	if h.seq == math.MaxUint64 {
		return dst, ErrSequence
	}
	if err := h.ensure(); err != nil {
		return dst, err
	}
	dst = append(dst, byte(typ))
	dst = slices.Grow(dst, TagLen) // so that the tag goes in place
	body := n + 1 + TagLen
	hdr := dst[start : start+HeaderLen]
	hdr[0], hdr[1], hdr[2] = byte(TypeApplicationData), 3, 3
	hdr[3], hdr[4] = byte(body>>8), byte(body)
	h.setNonce()
	h.seq++
	inner := dst[start+HeaderLen:]
	sealed := h.aead.Seal(inner[:0], h.nonce[:], inner, dst[start:start+HeaderLen])
	return dst[:start+HeaderLen+len(sealed)], nil
}

// Next returns the length of the record at the start of b, header
// included; 0 when b holds less than a whole record. After the handshake
// every record is protected, its outer type application_data (RFC 8446
// §5.2).
func Next(b []byte) (int, error) {
	if len(b) < HeaderLen {
		return 0, nil
	}
	if ContentType(b[0]) != TypeApplicationData {
		return 0, ErrRecordType
	}
	if b[1] != 3 || b[2] != 3 {
		return 0, ErrRecordVersion
	}
	n := int(b[3])<<8 | int(b[4])
	if n > MaxCiphertext {
		return 0, ErrRecordOverflow
	}
	if n < TagLen+1 {
		return 0, ErrBadRecordMAC // too short to hold a tag and a type
	}
	if len(b) < HeaderLen+n {
		return 0, nil
	}
	return HeaderLen + n, nil
}

// Open authenticates and decrypts the record rec (as Next delimits it) and
// appends its content, padding and type removed, to dst. The sequence
// number moves on only when the record is authentic. dst with room for
// len(rec) more bytes is not reallocated.
func (h *Half) Open(dst, rec []byte) (ContentType, []byte, error) {
	if len(rec) < HeaderLen+TagLen+1 {
		return 0, dst, ErrBadRecordMAC
	}
	if h.seq == math.MaxUint64 {
		return 0, dst, ErrSequence
	}
	if err := h.ensure(); err != nil {
		return 0, dst, err
	}
	h.setNonce()
	start := len(dst)
	out, err := h.aead.Open(dst, h.nonce[:], rec[HeaderLen:], rec[:HeaderLen])
	if err != nil {
		return 0, dst, ErrBadRecordMAC
	}
	h.seq++
	// TLSInnerPlaintext: content, the type, then zeros (§5.4).
	i := len(out) - 1
	for i >= start && out[i] == 0 {
		i--
	}
	if i < start {
		return 0, dst, ErrNoContentType
	}
	if len(out)-start > MaxPlaintext+1 {
		return 0, dst, ErrRecordOverflow
	}
	return ContentType(out[i]), out[:i], nil
}

// Opens counts how many whole protected records of stream, in order from
// the first that opens, this half opens from its current sequence number
// on, and moves the sequence number past them. Records before it that do
// not open (protected with the handshake's secrets) are skipped; so is an
// unprotected record. The handshake uses it to learn the sequence number
// crypto/tls left the server's application secret at: the records it sent
// under that secret (a NewSessionTicket) are the last of the flights it
// wrote. scratch is reused for the plaintext.
func (h *Half) Opens(stream, scratch []byte) (int, []byte) {
	count := 0
	for len(stream) >= HeaderLen {
		n := HeaderLen + (int(stream[3])<<8 | int(stream[4]))
		if len(stream) < n {
			break
		}
		rec := stream[:n]
		stream = stream[n:]
		if ContentType(rec[0]) != TypeApplicationData || n < HeaderLen+TagLen+1 {
			continue
		}
		if _, out, err := h.Open(scratch[:0], rec); err == nil {
			scratch = out
			count++
		} else if count > 0 {
			break
		}
	}
	return count, scratch
}
