// Package tlsrec is the record layer of TLS 1.3 (RFC 8446 §5) for a
// connection whose handshake crypto/tls has completed: it protects and
// opens application data records with the traffic secrets the handshake
// produced, handles the post-handshake messages a server must (KeyUpdate,
// §4.6.3) and the alerts (§6), and nothing else. Conn.Client makes it a
// client's, which also skips the server's NewSessionTickets (§4.6.1); the
// load generator in bench/ drives wss:// echo from its epoll loop so. It holds no goroutine, no
// lock and no buffer of its own: the caller owns every byte (the event
// loop decrypts straight out of its read buffer and encrypts straight into
// its write buffer).
//
// Why a record layer outside crypto/tls: a *tls.Conn kept per connection
// costs some 4 KB of heap when idle with an X25519 client, 6.6 KB with the
// X25519MLKEM768 share browsers send, and 22 KB for ever once one full
// record arrived, since its input buffer never shrinks and no API releases
// it (bench/spikes/tlsmem/FINDINGS.md). A connection here costs a Conn of
// some 300 bytes: secrets, keys, IVs and sequence numbers. Its AEADs (about
// 1.3 KB each for AES-GCM) are built when records flow and can be released
// when the connection goes quiet (Conn.Release), which costs some 0.9 µs to
// rebuild.
//
// What stays with crypto/tls: the whole handshake (key exchange,
// certificates, client authentication, downgrade protection, session
// tickets) and TLS 1.2. The caller captures the application traffic secrets
// a handshake produces through crypto/tls's documented key log
// (tls.Config.KeyLogWriter, NSS key log format), kept in memory for the one
// connection and never written anywhere, and finds how many records
// crypto/tls already protected with the server's secret (a session ticket)
// with Half.Opens.
//
// The cipher suites are the three of TLS 1.3 that crypto/tls negotiates:
// TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 (crypto/aes and
// crypto/cipher) and TLS_CHACHA20_POLY1305_SHA256
// (golang.org/x/crypto/chacha20poly1305, the implementation crypto/tls
// uses).
package tlsrec
