//go:build !linux

package loop

import "errors"

// fdGuardSupported: the guard is Linux-only; elsewhere it stays off.
const fdGuardSupported = false

func countFDs() (int, error)    { return 0, errors.New("loop: not Linux") }
func maxBacklog() int           { return 0 }
func setBacklog(int, int) error { return errors.New("loop: not Linux") }
func pauseListener(int) error   { return errors.New("loop: not Linux") }
func resumeListener(int) error  { return errors.New("loop: not Linux") }
