package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCgroupMemoryLimit: the container's memory limit is found in cgroup v2 (the
// smallest on the way up) or v1, and "max" or v1's huge value is no limit.
func TestCgroupMemoryLimit(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.max", "max\n")
	write("kubepods/memory.max", "1073741824\n")
	write("kubepods/pod1/ctr/memory.max", "268435456\n")
	write("kubepods/pod2/memory.max", "134217728\n")
	write("kubepods/pod2/ctr/memory.max", "max\n")
	write("unlimited/memory.max", "max\n")
	write("memory/docker/abc/memory.limit_in_bytes", "536870912\n")
	write("memory/memory.limit_in_bytes", "9223372036854771712\n")

	for _, tc := range []struct {
		name, self string
		want       int64
		wantFrom   string
	}{
		{"v2, the container's own", "0::/kubepods/pod1/ctr\n", 268435456, "kubepods/pod1/ctr/memory.max"},
		{"v2, a parent's is smaller", "0::/kubepods/pod2/ctr\n", 134217728, "kubepods/pod2/memory.max"},
		{"v2, namespaced: the root", "0::/\n", 0, ""},
		{"v2, no limit anywhere", "0::/unlimited\n", 0, ""},
		{"v1", "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n", 536870912, "memory/docker/abc/memory.limit_in_bytes"},
		{"v1, no limit", "4:memory:/elsewhere\n", 0, ""},
		{"nothing readable", "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, from := cgroupMemoryLimit(root, []byte(tc.self))
			if tc.wantFrom != "" {
				tc.wantFrom = filepath.Join(root, tc.wantFrom)
			}
			if got != tc.want || from != tc.wantFrom {
				t.Errorf("got %d from %q, want %d from %q", got, from, tc.want, tc.wantFrom)
			}
		})
	}
}

// TestSetMemoryLimitLeavesGOMEMLIMIT: an explicit GOMEMLIMIT wins.
func TestSetMemoryLimitLeavesGOMEMLIMIT(t *testing.T) {
	if n, _ := setMemoryLimit(func(k string) string {
		if k == "GOMEMLIMIT" {
			return "100MiB"
		}
		return ""
	}); n != 0 {
		t.Errorf("set %d with GOMEMLIMIT in the environment", n)
	}
}
