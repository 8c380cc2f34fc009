//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"errors"
	"time"
)

// setDeferAccept reports that TCP_DEFER_ACCEPT is a Linux option: Start
// fails when Options.DeferAccept is set on macOS and the BSDs.
func setDeferAccept(int, time.Duration) error {
	return errors.New("loop: DeferAccept needs Linux")
}

// unreadBytes cannot look into the socket's receive queue here (SIOCINQ is
// Linux's): deadlines are judged on the input read so far.
func unreadBytes(int) int { return 0 }
