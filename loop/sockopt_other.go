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
