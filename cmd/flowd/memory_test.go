package main

import "testing"

func TestMemoryDefaults(t *testing.T) {
	noCgroup := func() (int64, bool) { return 0, false }
	cgroup := func(n int64) func() (int64, bool) { return func() (int64, bool) { return n, true } }
	tests := []struct {
		name      string
		env       map[string]string
		cgroupMax func() (int64, bool)
		wantGC    int
		wantLimit int64
	}{
		{"defaults", nil, noCgroup, 400, 40 << 20},
		{"GOGC set", map[string]string{"GOGC": "100"}, noCgroup, 0, 40 << 20},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, noCgroup, 400, 0},
		{"both set", map[string]string{"GOGC": "off", "GOMEMLIMIT": "off"}, noCgroup, 0, 0},
		{"large container", nil, cgroup(1 << 30), 400, 40 << 20},
		{"small container", nil, cgroup(48 << 20), 400, 36 << 20},
		{"small container, GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "50MiB"}, cgroup(64 << 20), 400, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gc, limit := memoryDefaults(func(k string) string { return tc.env[k] }, tc.cgroupMax)
			if gc != tc.wantGC || limit != tc.wantLimit {
				t.Errorf("memoryDefaults = %d, %d; want %d, %d", gc, limit, tc.wantGC, tc.wantLimit)
			}
		})
	}
}

func TestParseCgroupMax(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"max\n", 0, false},
		{"67108864\n", 64 << 20, true},
		{"9223372036854771712\n", 0, false}, // cgroup v1: no limit
		{"", 0, false},
		{"-1", 0, false},
		{"12abc", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseCgroupMax(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseCgroupMax(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}
