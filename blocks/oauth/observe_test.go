package oauth

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/flowd/flowd/engine"
)

type tally map[string]int

type tallyCounter struct {
	t   tally
	key string
}

func (c tallyCounter) Inc() { c.t[c.key]++ }

// TestCountPorts: the wrapper counts the port the block left by, nothing
// for a port without a counter or a block error, and forwards Close.
func TestCountPorts(t *testing.T) {
	tl := tally{}
	next := []struct {
		port string
		err  error
	}{{"ok", nil}, {"ok", nil}, {"invalid", nil}, {"other", nil}, {"", errors.New("boom")}}
	i := 0
	inner := engine.BlockFunc(func(context.Context, *engine.Exec, engine.Msg) (string, error) {
		n := next[i]
		i++
		return n.port, n.err
	})
	b := CountPorts(inner, PortCounters([]string{"ok", "invalid"}, func(p string) engine.Counter { return tallyCounter{tl, p} }))
	for range next {
		b.Process(t.Context(), &engine.Exec{}, engine.Msg{}) //nolint:errcheck // the errors are part of the table
	}
	if want := (tally{"ok": 2, "invalid": 1}); !maps.Equal(tl, want) {
		t.Errorf("counted %v, want %v", tl, want)
	}
	if got := CountPorts(inner, nil); got == nil {
		t.Error("CountPorts without counters returned nil")
	}
	if err := b.(engine.Closer).Close(); err != nil {
		t.Errorf("Close of a block without Close: %v", err)
	}
}
