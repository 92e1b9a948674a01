package enginetest

import (
	"bytes"
	"sync"
)

// LogBuffer is an io.Writer safe for concurrent use: give it to a slog
// handler (engine.Options.Logger) and read what the runs logged from
// their own goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
