//go:build !amd64 && !arm64

package loop

import "runtime"

// curG identifies the calling goroutine by the id in its stack trace
// header ("goroutine 123 [running]:"). It is slower than the assembly
// version of amd64 and arm64 (about a microsecond) but exact.
func curG() uintptr {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = len("goroutine ")
	var id uintptr
	for i := prefix; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		id = id*10 + uintptr(b[i]-'0')
	}
	return id
}
