package flowd_test

import (
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/storetest"
)

// TestClockReachesEveryPart: one injected clock, years away from the real
// one, is what keysets, clients, users, schedules, run start times, token
// iat/exp and their validation all read. Were any part on time.Now, a
// token signed at the real time would not validate at the frozen one (or
// the other way round), and the recorded times would differ.
func TestClockReachesEveryPart(t *testing.T) {
	frozen := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return frozen }
	st := storetest.TempBoltWith(t, store.BoltOptions{Now: now})
	fd := flowd.NewTest(t, flowd.Options{Store: st, Clock: now, Issuer: "http://flowd.test", SnapshotsPerSecond: -1})
	ctx := t.Context()
	if err := fd.Keysets().Create(ctx, "k", "ES256"); err != nil {
		t.Fatal(err)
	}
	ks, err := fd.Keysets().Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	cl, _, err := fd.Clients().Add(ctx, oauth.Client{ID: "c", Scopes: []string{"a"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := fd.Users().Add(ctx, oidc.User{Username: "ada"}, "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"schema": "flowd/v1", "id": "clock", "name": "clock", "nodes": [
	  {"id": "go", "type": "core.manual", "x": 0, "y": 0},
	  {"id": "sign", "type": "jose.sign", "config": {"keyset": "k", "alg": "ES256", "audience": "\"x\"", "ttl": "5m"}, "x": 0, "y": 0},
	  {"id": "check", "type": "jose.validate", "config": {"keyset": "k", "algorithms": ["ES256"], "audience": ["x"], "leeway": "0s", "token": "msg.token"}, "x": 0, "y": 0},
	  {"id": "tick", "type": "schedule.cron", "config": {"spec": "0 3 * * *", "timezone": "UTC"}, "x": 0, "y": 0}
	], "wires": [{"from": "go", "port": "out", "to": "sign"}, {"from": "sign", "port": "out", "to": "check"}]}`
	if _, err := fd.App().Import(ctx, []byte(doc), true); err != nil {
		t.Fatal(err)
	}
	tr, err := fd.App().Run(ctx, "clock", "go", nil)
	if err != nil {
		t.Fatal(err)
	}
	last := tr.Steps[len(tr.Steps)-1]
	claims, _ := last.Msg.(map[string]any)["claims"].(map[string]any)
	iat, _ := claims["iat"].(int64)
	if f, ok := claims["iat"].(float64); ok {
		iat = int64(f)
	}
	sched := fd.Scheduler().List(1)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"key created", ks.Keys[0].Created.UTC(), frozen},
		{"client created", cl.Created.UTC(), frozen},
		{"user created", u.Created.UTC(), frozen},
		{"run started", tr.Started.UTC(), frozen},
		{"token validated at the frozen time", last.Node + ":" + last.Port, "check:valid"},
		{"token iat", iat, frozen.Unix()},
		{"next schedule tick", len(sched) == 1 && len(sched[0].Next) == 1 && sched[0].Next[0].Equal(time.Date(2031, 6, 2, 3, 0, 0, 0, time.UTC)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}
