package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/flowd/flowd/store"
)

func kvChange(name string) []store.Change {
	return []store.Change{{Kind: store.KindKV, Group: "ns", Name: name}}
}

// A subscriber that does not read is ended with ErrCompacted once the
// history it needs is gone; publishing never waits for it.
func TestFeedHubSlowSubscriber(t *testing.T) {
	h := store.NewFeedHub(0, 8)
	ch, err := h.Watch(t.Context(), 0, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	// Far more commits than the history and the channel buffer hold; if
	// Publish waited for the reader this would never return.
	const n = 1000
	for i := 1; i <= n; i++ {
		h.Publish(int64(i), kvChange("k"))
	}
	var last store.FeedEvent
	got := 0
	timeout := time.After(10 * time.Second) // hang guard
	for done := false; !done; {
		select {
		case ev, ok := <-ch:
			if !ok {
				done = true
				break
			}
			got += len(ev.Changes)
			last = ev
		case <-timeout:
			t.Fatal("watch neither delivered everything nor ended")
		}
	}
	if !errors.Is(last.Err, store.ErrCompacted) {
		t.Fatalf("slow subscriber's last event = %+v after %d changes, want ErrCompacted", last, got)
	}
	if got >= n {
		t.Errorf("got all %d changes through a history of 8: the test proves nothing", got)
	}
	// A new watch from a revision older than the history fails at once;
	// one within it works.
	if _, err := h.Watch(t.Context(), n-20, store.Filter{}); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch from a compacted revision: %v, want ErrCompacted", err)
	}
	ch2, err := h.Watch(t.Context(), n-4, store.Filter{})
	if err != nil {
		t.Fatalf("Watch within the history: %v", err)
	}
	for want := int64(n - 3); want <= n; want++ {
		if ev := <-ch2; ev.Rev != want || ev.Err != nil {
			t.Fatalf("event = %+v, want revision %d", ev, want)
		}
	}
}

// Publish ignores revisions that do not grow (a backend bug must not
// reorder the feed).
func TestFeedHubMonotonic(t *testing.T) {
	h := store.NewFeedHub(5, 0)
	h.Publish(5, kvChange("same"))
	h.Publish(3, kvChange("older"))
	if h.Rev() != 5 {
		t.Fatalf("Rev = %d, want 5", h.Rev())
	}
	if _, err := h.Watch(t.Context(), 4, store.Filter{}); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch before the hub's start: %v, want ErrCompacted", err)
	}
}

func TestFilterMatch(t *testing.T) {
	c := store.Change{Kind: store.KindKV, Group: "vars/f"}
	tests := []struct {
		name string
		f    store.Filter
		want bool
	}{
		{"zero", store.Filter{}, true},
		{"kind", store.Filter{Kinds: []store.Kind{store.KindKV}}, true},
		{"other kind", store.Filter{Kinds: []store.Kind{store.KindFlow, store.KindSecret}}, false},
		{"prefix", store.Filter{Group: "vars/"}, true},
		{"exact", store.Filter{Group: "vars/f"}, true},
		{"exact other", store.Filter{Group: "vars"}, false},
		{"prefix other", store.Filter{Group: "var/"}, false},
		{"longer prefix", store.Filter{Group: "vars/f/"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(c); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}
