package oauth

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// TestGetDecodedMemo: Get answers what the store holds now, whoever wrote
// it (this registry, another node's registry, a direct store write), and a
// caller's edit to a returned client reaches nobody else.
func TestGetDecodedMemo(t *testing.T) {
	c, st := newClients(t)
	other := NewClients(st) // another node over the same store
	ctx := t.Context()
	if _, _, err := c.Add(ctx, Client{ID: "svc", Scopes: []string{"read"}, Audiences: []string{"https://api"}}, ""); err != nil {
		t.Fatal(err)
	}
	get := func(c *Clients) Client {
		t.Helper()
		cl, err := c.Get(ctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	first := get(c)
	first.Scopes[0] = "admin"
	first.Audiences = append(first.Audiences, "https://evil")
	if again := get(c); !reflect.DeepEqual(again.Scopes, []string{"read"}) || !reflect.DeepEqual(again.Audiences, []string{"https://api"}) {
		t.Fatalf("an edit of a returned client reached the next Get: %+v", again)
	}

	// Another node changes the record: this one sees it on the next Get.
	if err := st.UpdateKV(ctx, nsClients, "svc", func(old []byte) ([]byte, error) {
		var cl Client
		if err := json.Unmarshal(old, &cl); err != nil {
			return nil, err
		}
		cl.Scopes = []string{"write"}
		return json.Marshal(cl)
	}); err != nil {
		t.Fatal(err)
	}
	if got := get(c); !reflect.DeepEqual(got.Scopes, []string{"write"}) {
		t.Errorf("after another node's write: scopes %v, want [write]", got.Scopes)
	}
	if got := get(other); !reflect.DeepEqual(got.Scopes, []string{"write"}) {
		t.Errorf("other node: scopes %v, want [write]", got.Scopes)
	}

	// Removed on the other node: gone here at once, and the memo with it.
	if err := other.Remove(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "svc"); !errors.Is(err, ErrNoClient) {
		t.Errorf("Get after removal = %v, want ErrNoClient", err)
	}
	if _, ok := c.decoded.m["svc"]; ok {
		t.Errorf("the memo still holds a removed client")
	}
}
