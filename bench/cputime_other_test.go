//go:build !linux

package bench

// threadCPU is not measured outside Linux; BenchmarkPaired then reports
// no CPU ratio.
func threadCPU() int64 { return 0 }
