package engine

import (
	"testing"
	"unsafe"
)

// A run allocates its trace (with the id's text) and its working state,
// each sized to a size class: a field that pushes one past costs every
// run the next class's bytes, so it should be a decision.
func TestRunAllocationSizeClasses(t *testing.T) {
	tests := []struct {
		name      string
		size, max uintptr
	}{
		{"Trace", unsafe.Sizeof(Trace{}), 576},
		{"runState", unsafe.Sizeof(runState{}), 416},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.size > tc.max {
				t.Errorf("%s is %d bytes, past the %d-byte size class", tc.name, tc.size, tc.max)
			}
		})
	}
}
