//go:build !linux

package loop

import (
	"errors"
	"time"
)

// setDeferAccept reports that TCP_DEFER_ACCEPT is a Linux option.
func setDeferAccept(int, time.Duration) error {
	return errors.New("loop: DeferAccept needs Linux")
}

// unreadBytes cannot look into the socket's receive queue here: deadlines
// are judged on the input read so far.
func unreadBytes(int) int { return 0 }
