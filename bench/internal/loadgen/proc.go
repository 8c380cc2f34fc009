package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClkTck is USER_HZ, 100 on every Linux architecture Go supports.
const ClkTck = 100

// ProcCPU returns the user+system CPU time of process pid (all threads).
func ProcCPU(pid int) (time.Duration, error) {
	_, t, err := ProcTimes(pid)
	return t, err
}

// ProcTimes returns the user and the user+system CPU time of process pid.
func ProcTimes(pid int) (user, total time.Duration, err error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, 0, err
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	tick := time.Second / ClkTck
	return time.Duration(ut) * tick, time.Duration(ut+st) * tick, nil
}

// ProcState returns the state letter of process pid (R, S, D, Z, ...), or
// an error when there is no such process.
func ProcState(pid int) (string, error) {
	f, err := procStat(pid)
	if err != nil {
		return "", err
	}
	return f[0], nil
}

// Alive reports whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	st, err := ProcState(pid)
	return err == nil && st != "Z" && st != "X"
}

// procStat returns the fields of /proc/<pid>/stat after the command name.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f, nil
}

// ProcStatus returns a field of /proc/<pid>/status as a number (kB fields
// in bytes); pid 0 is the calling process itself.
func ProcStatus(pid int, field string) (int64, error) {
	p := "/proc/self/status"
	if pid > 0 {
		p = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		return n, err
	}
	return 0, fmt.Errorf("%s: no %s", p, field)
}

// ProcRSS returns the resident set size of process pid in bytes (0 when it
// cannot be read); pid 0 is the calling process itself.
func ProcRSS(pid int) int64 {
	n, _ := ProcStatus(pid, "VmRSS")
	return n
}
