package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// memLimitRatio is the share of the container's memory limit given to the Go runtime as
// its soft limit: the rest is for what the runtime does not count against it (the
// binary, thread stacks, kernel buffers charged to the container).
const memLimitRatio = 0.9

// setMemoryLimit gives the Go runtime a soft memory limit of 90 % of the container's
// memory limit (cgroup v2 memory.max, the nearest limit on the way to the root; cgroup
// v1 memory.limit_in_bytes), so that a sidecar near its limit collects harder instead
// of being OOM-killed. Go sets GOMAXPROCS from the cgroup's CPU quota by itself, but not
// GOMEMLIMIT (golang/go#75164). A GOMEMLIMIT in the environment wins, and without a
// limit nothing is set. It returns the limit set and the file it came from.
func setMemoryLimit(getenv func(string) string) (int64, string) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, ""
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	limit, from := cgroupMemoryLimit("/sys/fs/cgroup", self)
	if limit <= 0 {
		return 0, ""
	}
	soft := int64(float64(limit) * memLimitRatio)
	debug.SetMemoryLimit(soft)
	return soft, from
}

// cgroupMemoryLimit reads the memory limit of the cgroup that procSelfCgroup (the
// content of /proc/self/cgroup) names, under root; 0 when there is none.
func cgroupMemoryLimit(root string, procSelfCgroup []byte) (int64, string) {
	var v2, v1 string
	sc := bufio.NewScanner(bytes.NewReader(procSelfCgroup))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case v1 == "" && hasController(parts[1], "memory"):
			v1 = parts[2]
		}
	}
	if v2 != "" {
		// The smallest limit from the cgroup up to the root: a parent's binds too. In a
		// container with its own cgroup namespace the path is "/".
		best, from := int64(0), ""
		for dir := filepath.Join(root, filepath.Clean("/"+v2)); strings.HasPrefix(dir, root); dir = filepath.Dir(dir) {
			if n, ok := readLimit(filepath.Join(dir, "memory.max")); ok && (best == 0 || n < best) {
				best, from = n, filepath.Join(dir, "memory.max")
			}
			if dir == root {
				break
			}
		}
		if best > 0 {
			return best, from
		}
	}
	for _, p := range []string{filepath.Join(root, "memory", filepath.Clean("/"+v1)), filepath.Join(root, "memory")} {
		if n, ok := readLimit(filepath.Join(p, "memory.limit_in_bytes")); ok {
			return n, filepath.Join(p, "memory.limit_in_bytes")
		}
	}
	return 0, ""
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readLimit reads a limit file: a number of bytes; "max", or cgroup v1's page-rounded
// maximum, is no limit.
func readLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0, false
	}
	return n, true
}
