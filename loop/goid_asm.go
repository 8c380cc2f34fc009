//go:build amd64 || arm64

package loop

// curG identifies the calling goroutine: it returns the address of the
// runtime's descriptor of the running goroutine, which stays the same for
// the goroutine's whole life. An event loop records it when it first calls
// into the package, and Conn methods compare it to decide whether they run on
// the connection's loop (write directly) or elsewhere (the loop's inbox). The
// value is only compared, never dereferenced.
func curG() uintptr
