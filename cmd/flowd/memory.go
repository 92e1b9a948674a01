package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Memory defaults of the flowd binary (GOGC and GOMEMLIMIT in the
// environment win; see README "Memory").
//
// flowd's live heap is small (a few MB) and its garbage is per request,
// so Go's default GOGC=100 means dozens of collections a second under
// load: 400 trades a few MB for a quarter of the GC work. Alone, 400 lets
// the heap grow to five times what is live, and a burst of token requests
// holds two argon2id computations (19 MiB each, the hashing pool) live at
// once; so a soft limit makes the collector work harder only when the
// heap gets near it. A small live heap keeps GOGC's pace; a large one is
// collected more often, never refused memory (the limit is soft: the
// runtime caps the GC's share of the CPU).
//
// The limit is 40 MiB, not the 64 MiB the process is meant to stay under:
// it bounds Go's own memory only, and the pages of flowd's executable
// that the process maps count in its RSS too (about 23 MiB of a 36 MB
// binary; bench/rss.sh shows both). With 64 MiB the peak RSS under
// JWKS and validation load was 83 MiB, with 40 MiB 63 MiB, at the same
// share of CPU in the collector (about 3 %; docs/benchmarks.md, issue 18,
// sixth round). In a container whose memory limit (cgroup memory.max) is
// below 53 MiB, the soft limit is 75% of it.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 40 << 20
	cgroupLimitShare   = 0.75
)

// memoryDefaults decides what main sets: gcPercent when GOGC is unset,
// limit when GOMEMLIMIT is unset (0: leave it). cgroupMax reports the
// container's memory limit in bytes, if any.
func memoryDefaults(getenv env, cgroupMax func() (int64, bool)) (gcPercent int, limit int64) {
	if getenv("GOGC") == "" {
		gcPercent = defaultGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		limit = defaultMemoryLimit
		if max, ok := cgroupMax(); ok && float64(max)*cgroupLimitShare < defaultMemoryLimit {
			limit = int64(float64(max) * cgroupLimitShare)
		}
	}
	return gcPercent, limit
}

// applyMemoryDefaults sets the defaults memoryDefaults chose.
func applyMemoryDefaults(getenv env) {
	gc, limit := memoryDefaults(getenv, cgroupMemoryMax)
	if gc > 0 {
		debug.SetGCPercent(gc)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}

// cgroupMemoryMax reads the memory limit of this process's cgroup (v2,
// then v1); "max" or a missing file is no limit.
func cgroupMemoryMax() (int64, bool) {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		return parseCgroupMax(string(b))
	}
	return 0, false
}

func parseCgroupMax(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	// cgroup v1 reports "no limit" as a huge number (close to 2^63).
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0, false
	}
	return n, true
}
