package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/core"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store/storetest"
	"github.com/flowd/flowd/ui/api"
)

// rolloverFlow rotates keyset main keeping retired keys 72 h and signs
// tokens living 3 h, longer than the 2 h the rotation declares: the keyset
// needs 3 h + the 30 m JWKS max-age = 3h30m of overlap.
const rolloverFlow = `{"schema":"flowd/v1","id":"rollover","name":"rollover","nodes":[
  {"id":"go","type":"core.manual","x":0,"y":0},
  {"id":"rotate","type":"jose.rotate","config":{"keyset":"main","algs":["ES256"],"retire_after":"72h","max_token_ttl":"2h","jwks_max_age":"30m"},"x":0,"y":0},
  {"id":"sign","type":"jose.sign","config":{"keyset":"main","alg":"ES256","ttl":"3h"},"x":0,"y":0}],
  "wires":[{"from":"go","port":"out","to":"rotate"},{"from":"go","port":"out","to":"sign"}]}`

// TestRotateOverlapFromDeployedFlows: the admin API rotates with the
// overlap the keyset's deployed jose.rotate uses, refuses one shorter than
// its tokens live plus its JWKS max-age (naming the minimum and the tokens
// at risk), and takes it only when forced, saying what will break.
func TestRotateOverlapFromDeployedFlows(t *testing.T) {
	ctx := t.Context()
	st := storetest.TempBolt(t)
	clk := enginetest.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	ks := jose.NewKeysets(st)
	ks.Now = clk.Now
	reg := enginetest.Registry(t, core.Register, jose.Register)
	svc := engine.NewServices()
	if err := jose.Provide(svc, ks, jose.Options{}); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, app.Config{Store: st, Registry: reg, Services: svc})
	if _, err := a.Import(ctx, []byte(rolloverFlow), true); err != nil {
		t.Fatal(err)
	}
	h := api.New(a, tokenIs(keysetToken), nil)
	api.RegisterKeysets(h, ks)
	for _, name := range []string{"main", "other"} {
		if err := ks.Ensure(ctx, name, "ES256"); err != nil {
			t.Fatal(err)
		}
	}
	active := func(name string) string {
		info, err := ks.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range info.Keys {
			if k.State == jose.StateActive {
				return k.Kid
			}
		}
		t.Fatalf("%s has no active key", name)
		return ""
	}
	type answer struct {
		Rotation    jose.Rotation
		Keyset      jose.KeysetInfo
		RetireAfter string `json:"retire_after"`
		Warning     string
		Error       struct{ Code, Message string }
	}
	rotate := func(t *testing.T, name, body string) (int, answer) {
		t.Helper()
		w := ksDo(t, h, "POST", "/admin/api/keysets/"+name+"/rotate", body)
		var out answer
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%d %s: %v", w.Code, w.Body, err)
		}
		return w.Code, out
	}
	retireAt := func(t *testing.T, out answer, kid string) time.Time {
		t.Helper()
		for _, k := range out.Keyset.Keys {
			if k.Kid == kid {
				if k.State != jose.StateRetired {
					t.Errorf("%s is %s, want retired", kid, k.State)
				}
				return k.RetireAt
			}
		}
		t.Fatalf("%s not in the answer", kid)
		return time.Time{}
	}

	for _, tt := range []struct {
		name, keyset, body string
		status             int
		code               string
		retireAfter        time.Duration // 0: refused, nothing rotated
		mention            []string      // in the error message or the warning
	}{
		{name: "default is the deployed jose.rotate's overlap", keyset: "main", body: `{}`, status: 200, retireAfter: 72 * time.Hour},
		{name: "keyset without a deployed rotation gets jose.rotate's default", keyset: "other", body: ``, status: 200, retireAfter: 48 * time.Hour},
		{name: "a longer overlap is taken", keyset: "main", body: `{"retire_after":"100h"}`, status: 200, retireAfter: 100 * time.Hour},
		{name: "1s refused", keyset: "main", body: `{"retire_after":"1s"}`, status: 400, code: "overlap_too_short",
			mention: []string{"3h30m", "live up to 3h and", "JWKS for 30m", "rollover/sign", "unknown_kid", "force"}},
		{name: "just under the minimum refused", keyset: "main", body: `{"retire_after":"3h29m59s"}`, status: 400, code: "overlap_too_short",
			mention: []string{"3h30m"}},
		{name: "the minimum is taken", keyset: "main", body: `{"retire_after":"3h30m"}`, status: 200, retireAfter: 3*time.Hour + 30*time.Minute},
		{name: "1s forced", keyset: "main", body: `{"retire_after":"1s","force":true}`, status: 200, retireAfter: time.Second,
			mention: []string{"forced", "3h30m", "unknown_kid"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk.Advance(time.Minute)
			old := active(tt.keyset)
			status, out := rotate(t, tt.keyset, tt.body)
			if status != tt.status || out.Error.Code != tt.code {
				t.Fatalf("status %d code %q (%s), want %d %q", status, out.Error.Code, out.Error.Message, tt.status, tt.code)
			}
			text := out.Error.Message + out.Warning
			for _, m := range append(tt.mention, old) {
				if tt.mention != nil && !strings.Contains(text, m) {
					t.Errorf("message does not mention %q: %s", m, text)
				}
			}
			if tt.mention == nil && out.Warning != "" {
				t.Errorf("unexpected warning: %s", out.Warning)
			}
			if tt.retireAfter == 0 {
				if now := active(tt.keyset); now != old {
					t.Errorf("refused rotation rotated: active %s -> %s", old, now)
				}
				return
			}
			if got := retireAt(t, out, old); !got.Equal(clk.Now().Add(tt.retireAfter)) {
				t.Errorf("retired until %v, want now + %s", got, tt.retireAfter)
			}
			if out.RetireAfter != tt.retireAfter.String() {
				t.Errorf("answer retire_after %q, want %s", out.RetireAfter, tt.retireAfter)
			}
		})
	}
}
