package ingestbench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// errProcFormat is returned for a /proc file that does not look as expected.
var errProcFormat = errors.New("ingestbench: unexpected /proc format")

// ClockTicks is the kernel's clock ticks per second (getconf CLK_TCK), 100 when getconf
// cannot tell.
func ClockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
}

// ProcCPU returns a process's user plus system CPU time in clock ticks (/proc/PID/stat).
func ProcCPU(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("ingestbench: failed to read the CPU time of %d: %w", pid, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime + stime (fields 14 and 15) from a /proc/PID/stat line. The
// command name (field 2) is in parentheses and may hold spaces, so fields are counted from
// the last ')'.
func parseStatCPU(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no ')' in stat", errProcFormat)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: %d fields after the command", errProcFormat, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%w: %w", errProcFormat, err)
	}
	return ut + st, nil
}

// ProcPeakRSS returns a process's peak resident set size in bytes (VmHWM of /proc/PID/status).
func ProcPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("ingestbench: failed to read the status of %d: %w", pid, err)
	}
	return parseStatusKB(b, "VmHWM")
}

// parseStatusKB returns the value of a "Key:   N kB" line of /proc/PID/status in bytes.
func parseStatusKB(b []byte, key string) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%w: %s is %q", errProcFormat, key, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errProcFormat, err)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("%w: no %s line", errProcFormat, key)
}
