//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import "errors"

// fdGuardSupported: the guard counts descriptors in /proc/self/fd and
// pauses the listener with a Linux socket filter; on macOS and the BSDs it
// stays off (Server.FDLimit is zero).
const fdGuardSupported = false

var errNotLinux = errors.New("loop: not Linux")

func countFDs() (int, error)    { return 0, errNotLinux }
func maxBacklog() int           { return 0 }
func setBacklog(int, int) error { return errNotLinux }
func pauseListener(int) error   { return errNotLinux }
func resumeListener(int) error  { return errNotLinux }
func shedFilter(int) error      { return errNotLinux }
