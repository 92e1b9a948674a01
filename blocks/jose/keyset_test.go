package jose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/store/memstore"
)

func TestKeysetLifecycle(t *testing.T) {
	ctx := t.Context()
	m, st, clk := newKeysetsForTest(t)
	algs := []string{"ES256", "HS256", "RS256", "EdDSA"}
	t0 := clk.Now()

	createKeyset(t, m, "auth", algs...)
	info, err := m.Get(ctx, "auth")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	initial := keysByState(info)
	for _, alg := range algs {
		if len(initial[alg][StateActive]) != 1 || len(initial[alg][StateNext]) != 1 || len(initial[alg][StateRetired]) != 0 {
			t.Fatalf("after Create %s: %v, want one active and one next", alg, initial[alg])
		}
		act := keyInfo(t, info, initial[alg][StateActive][0])
		if !act.Activated.Equal(t0) || !act.Created.Equal(t0) {
			t.Errorf("%s active: created %v activated %v, want %v", alg, act.Created, act.Activated, t0)
		}
	}
	assertOneActivePerAlg(t, info)

	t.Run("first rotation promotes next and retires active in one transaction", func(t *testing.T) {
		clk.Advance(10 * time.Minute)
		now := clk.Now()
		commits := st.commitCount()
		rot, err := m.Rotate(ctx, "auth", RotateOptions{RetireAfter: time.Hour})
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if got := st.commitCount() - commits; got != 1 {
			t.Errorf("Rotate made %d store writes, want 1", got)
		}
		info, err := m.Get(ctx, "auth")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		after := keysByState(info)
		for _, alg := range algs {
			if got, want := after[alg][StateActive], initial[alg][StateNext]; !slices.Equal(got, want) {
				t.Errorf("%s active = %v, want the old next %v", alg, got, want)
			}
			if got, want := after[alg][StateRetired], initial[alg][StateActive]; !slices.Equal(got, want) {
				t.Errorf("%s retired = %v, want the old active %v", alg, got, want)
			}
			if len(after[alg][StateNext]) != 1 || after[alg][StateNext][0] == initial[alg][StateNext][0] {
				t.Errorf("%s next = %v, want one new key", alg, after[alg][StateNext])
			}
			ret := keyInfo(t, info, initial[alg][StateActive][0])
			if !ret.RetireAt.Equal(now.Add(time.Hour)) {
				t.Errorf("%s retired RetireAt = %v, want %v", alg, ret.RetireAt, now.Add(time.Hour))
			}
			act := keyInfo(t, info, initial[alg][StateNext][0])
			if !act.Activated.Equal(now) {
				t.Errorf("%s promoted Activated = %v, want %v", alg, act.Activated, now)
			}
		}
		if len(rot.Activated) != len(algs) || len(rot.Retired) != len(algs) || len(rot.Created) != len(algs) || len(rot.Deleted) != 0 {
			t.Errorf("Rotation = %+v, want %d activated/retired/created and none deleted", rot, len(algs))
		}
		assertOneActivePerAlg(t, info)
	})

	var firstRetired []string
	for _, alg := range algs {
		firstRetired = append(firstRetired, initial[alg][StateActive][0])
	}

	t.Run("second rotation before the deadline keeps retired keys", func(t *testing.T) {
		clk.Advance(30 * time.Minute)
		rot, err := m.Rotate(ctx, "auth", RotateOptions{RetireAfter: time.Hour})
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if len(rot.Deleted) != 0 {
			t.Errorf("deleted %v before their deadline", rot.Deleted)
		}
		info, _ := m.Get(ctx, "auth")
		for _, kid := range firstRetired {
			if !hasKid(info, kid) {
				t.Errorf("retired key %s deleted before its deadline", kid)
			}
		}
		for alg, states := range keysByState(info) {
			if len(states[StateRetired]) != 2 {
				t.Errorf("%s: %d retired keys, want 2", alg, len(states[StateRetired]))
			}
		}
		assertOneActivePerAlg(t, info)
	})

	t.Run("rotation past the deadline deletes expired retired keys", func(t *testing.T) {
		clk.Advance(45 * time.Minute) // first retirees expired 5 minutes ago; second not yet
		rot, err := m.Rotate(ctx, "auth", RotateOptions{RetireAfter: time.Hour})
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		slices.Sort(firstRetired)
		deleted := slices.Clone(rot.Deleted)
		slices.Sort(deleted)
		if !slices.Equal(deleted, firstRetired) {
			t.Errorf("Deleted = %v, want %v", deleted, firstRetired)
		}
		info, _ := m.Get(ctx, "auth")
		for _, kid := range firstRetired {
			if hasKid(info, kid) {
				t.Errorf("expired key %s still in keyset", kid)
			}
		}
		body, _, err := m.JWKS(ctx, "auth")
		if err != nil {
			t.Fatalf("JWKS: %v", err)
		}
		for _, kid := range firstRetired {
			if strings.Contains(string(body), kid) {
				t.Errorf("JWKS still publishes deleted key %s", kid)
			}
		}
		assertOneActivePerAlg(t, info)
	})

	t.Run("revoke removes the key from JWKS and verify keys at once", func(t *testing.T) {
		info, _ := m.Get(ctx, "auth")
		byState := keysByState(info)
		victim := byState["ES256"][StateActive][0]
		next := byState["ES256"][StateNext][0]
		before, etagBefore, _ := m.JWKS(ctx, "auth")
		if !strings.Contains(string(before), victim) {
			t.Fatalf("active key %s not in JWKS before revoke", victim)
		}
		if err := m.Revoke(ctx, "auth", victim); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		after, etagAfter, _ := m.JWKS(ctx, "auth")
		if strings.Contains(string(after), victim) {
			t.Errorf("revoked key %s still in JWKS", victim)
		}
		if etagAfter == etagBefore {
			t.Errorf("ETag unchanged after revoke")
		}
		vks, err := m.Source("auth").VerifyKeys(ctx, false)
		if err != nil {
			t.Fatalf("VerifyKeys: %v", err)
		}
		for _, vk := range vks {
			if vk.JWK.KeyID == victim {
				t.Errorf("revoked key %s still a verify key", victim)
			}
		}
		info, _ = m.Get(ctx, "auth")
		byState = keysByState(info)
		if got := byState["ES256"][StateActive]; !slices.Equal(got, []string{next}) {
			t.Errorf("ES256 active after revoke = %v, want the promoted next %s", got, next)
		}
		if len(byState["ES256"][StateNext]) != 1 {
			t.Errorf("ES256 next after revoke = %v, want one new key", byState["ES256"][StateNext])
		}
		if k := keyInfo(t, info, victim); !k.Revoked || k.State != StateRetired {
			t.Errorf("revoked key = %+v, want revoked and retired", k)
		}
		signer, err := m.ActiveSigner(ctx, "auth", "ES256")
		if err != nil || signer.Kid != next {
			t.Errorf("ActiveSigner = %s, %v; want %s", signer.Kid, err, next)
		}
		assertOneActivePerAlg(t, info)

		if err := m.Revoke(ctx, "auth", victim); err != nil {
			t.Errorf("second Revoke: %v, want no-op", err)
		}
		if err := m.Revoke(ctx, "auth", "no-such-kid"); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("Revoke unknown kid: %v, want ErrKeyNotFound", err)
		}

		clk.Advance(time.Second)
		rot, err := m.Rotate(ctx, "auth", RotateOptions{Alg: "HS256", RetireAfter: time.Hour})
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if !slices.Contains(rot.Deleted, victim) {
			t.Errorf("Rotate after revoke deleted %v, want it to include %s", rot.Deleted, victim)
		}
	})

	t.Run("state persists across managers", func(t *testing.T) {
		want, err := m.Get(ctx, "auth")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		m2 := anotherNode(st, clk)
		got, err := m2.Get(ctx, "auth")
		if err != nil {
			t.Fatalf("reopened Get: %v", err)
		}
		wantJSON, _ := json.Marshal(want)
		gotJSON, _ := json.Marshal(got)
		if string(wantJSON) != string(gotJSON) {
			t.Errorf("reopened keyset differs:\n got %s\nwant %s", gotJSON, wantJSON)
		}
		b1, e1, _ := m.JWKS(ctx, "auth")
		b2, e2, _ := m2.JWKS(ctx, "auth")
		if string(b1) != string(b2) || e1 != e2 {
			t.Errorf("reopened JWKS differs")
		}
		k1, _ := m.ActiveSigner(ctx, "auth", "HS256")
		k2, _ := m2.ActiveSigner(ctx, "auth", "HS256")
		if string(k1.JWK.Key.([]byte)) != string(k2.JWK.Key.([]byte)) {
			t.Errorf("reopened HS256 secret differs")
		}
	})
}

func TestRotateWithoutNextKey(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsWith(t, "solo")
	first, err := m.Generate(ctx, "solo", "ES384", "", StateActive)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if first.State != StateActive || first.Alg != "ES384" || first.Use != UseSig || first.Crv != "P-384" {
		t.Fatalf("Generate = %+v", first)
	}
	clk.Advance(time.Minute)
	rot, err := m.Rotate(ctx, "solo", RotateOptions{})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if len(rot.Activated) != 1 || len(rot.Created) != 2 || !slices.Equal(rot.Retired, []string{first.Kid}) {
		t.Fatalf("Rotation = %+v, want a generated active, a new next, and %s retired", rot, first.Kid)
	}
	info, _ := m.Get(ctx, "solo")
	by := keysByState(info)["ES384"]
	if !slices.Equal(by[StateActive], rot.Activated) || len(by[StateNext]) != 1 || !slices.Equal(by[StateRetired], []string{first.Kid}) {
		t.Errorf("keys after rotate = %v", by)
	}
	if ret := keyInfo(t, info, first.Kid); !ret.RetireAt.Equal(clk.Now().Add(DefaultRetireAfter)) {
		t.Errorf("RetireAt = %v, want now + DefaultRetireAfter", ret.RetireAt)
	}
}

func TestKeysetErrors(t *testing.T) {
	ctx := t.Context()
	m, st, _ := newKeysetsWith(t, "ks", "ES256")
	commits := st.commitCount()
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"create existing", func() error { return m.Create(ctx, "ks", "ES256") }, ErrKeysetExists},
		{"create bad name", func() error { return m.Create(ctx, "../etc", "ES256") }, ErrInvalidKeyset},
		{"create empty name", func() error { return m.Create(ctx, "", "ES256") }, ErrInvalidKeyset},
		{"create unsupported alg", func() error { return m.Create(ctx, "other", "none") }, ErrUnsupported},
		{"get missing", func() error { _, err := m.Get(ctx, "missing"); return err }, ErrNoKeyset},
		{"jwks missing", func() error { _, _, err := m.JWKS(ctx, "missing"); return err }, ErrNoKeyset},
		{"rotate missing", func() error { _, err := m.Rotate(ctx, "missing", RotateOptions{}); return err }, ErrNoKeyset},
		{"rotate alg not in keyset", func() error { _, err := m.Rotate(ctx, "ks", RotateOptions{Alg: "RS256"}); return err }, ErrNoActiveKey},
		{"rotate unsupported alg", func() error { _, err := m.Rotate(ctx, "ks", RotateOptions{Alg: "HS1"}); return err }, ErrUnsupported},
		{"rotate negative retire", func() error { _, err := m.Rotate(ctx, "ks", RotateOptions{RetireAfter: -time.Second}); return err }, ErrInvalidKeyset},
		{"second active key", func() error { _, err := m.Generate(ctx, "ks", "ES256", UseSig, StateActive); return err }, ErrInvalidKeyset},
		{"next without active", func() error { _, err := m.Generate(ctx, "ks", "EdDSA", UseSig, StateNext); return err }, ErrInvalidKeyset},
		{"generate retired", func() error { _, err := m.Generate(ctx, "ks", "ES256", UseSig, StateRetired); return err }, ErrInvalidKeyset},
		{"generate wrong use", func() error { _, err := m.Generate(ctx, "ks", "ES256", UseEnc, StateNext); return err }, ErrInvalidKey},
		{"generate in missing keyset", func() error { _, err := m.Generate(ctx, "missing", "ES256", "", StateActive); return err }, ErrNoKeyset},
		{"revoke in missing keyset", func() error { return m.Revoke(ctx, "missing", "x") }, ErrNoKeyset},
		{"delete missing", func() error { return m.Delete(ctx, "missing") }, ErrNoKeyset},
		{"active signer for absent alg", func() error { _, err := m.ActiveSigner(ctx, "ks", "RS256"); return err }, ErrNoActiveKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	names, err := m.List(ctx)
	if err != nil || !slices.Equal(names, []string{"ks"}) {
		t.Errorf("List = %v, %v; want [ks] (failed calls must not create keysets)", names, err)
	}
	if st.commitCount() != commits {
		t.Errorf("failed calls wrote the store %d times", st.commitCount()-commits)
	}
}

// failingStore fails some operations of a testStore.
type failingStore struct {
	*testStore
	getErr, updateErr error
}

func (s *failingStore) GetSecret(ctx context.Context, kind, name string) ([]byte, error) {
	if s.getErr != nil {
		return nil, s.getErr
	}
	return s.testStore.GetSecret(ctx, kind, name)
}

func (s *failingStore) UpdateSecret(ctx context.Context, kind, name string, fn func([]byte) ([]byte, error)) error {
	if s.updateErr != nil {
		return s.updateErr
	}
	return s.testStore.UpdateSecret(ctx, kind, name, fn)
}

func TestStoreFailures(t *testing.T) {
	ctx := t.Context()
	errDisk := errors.New("disk on fire")
	st := &failingStore{testStore: newTestStore(t)}
	m := NewKeysets(st)
	createKeyset(t, m, "ks", "HS256")
	cold := NewKeysets(st)

	st.getErr = errDisk
	_, _, err := cold.JWKS(ctx, "ks")
	if !errors.Is(err, errDisk) || errors.Is(err, ErrNoKeyset) {
		t.Errorf("JWKS with a failing store = %v, want the store error, not ErrNoKeyset", err)
	}
	if _, _, err := cold.JWKS(ctx, "missing"); !errors.Is(err, ErrNoKeyset) {
		t.Errorf("JWKS of a missing keyset with a failing get = %v, want ErrNoKeyset", err)
	}
	if _, _, err := m.JWKS(ctx, "ks"); err != nil {
		t.Errorf("cached JWKS needs the store: %v", err)
	}
	st.getErr = nil
	st.updateErr = errDisk
	if _, err := m.Rotate(ctx, "ks", RotateOptions{}); !errors.Is(err, errDisk) {
		t.Errorf("Rotate with a failing store = %v, want the store error", err)
	}
	if _, _, err := NewSigner(m).Sign(ctx, SignRequest{Keyset: "ks", TTL: time.Minute}); err != nil {
		t.Errorf("Sign after a failed rotate: %v", err)
	}
}

func TestEnsureIsIdempotent(t *testing.T) {
	ctx := t.Context()
	m, st, _ := newKeysetsForTest(t)
	if err := m.Ensure(ctx, "e", "ES256"); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	first, _ := m.Get(ctx, "e")
	commits, version := st.commitCount(), m.Version("e")
	if err := m.Ensure(ctx, "e", "ES256"); err != nil {
		t.Fatalf("Ensure again: %v", err)
	}
	if st.commitCount() != commits || m.Version("e") != version {
		t.Errorf("Ensure of present algs wrote the store or rebuilt the cache")
	}
	again, _ := m.Get(ctx, "e")
	if len(again.Keys) != len(first.Keys) {
		t.Errorf("Ensure again changed keys: %d -> %d", len(first.Keys), len(again.Keys))
	}
	if err := m.Ensure(ctx, "e", "ES256", "HS384"); err != nil {
		t.Fatalf("Ensure new alg: %v", err)
	}
	more, _ := m.Get(ctx, "e")
	by := keysByState(more)
	if len(by["HS384"][StateActive]) != 1 || len(by["HS384"][StateNext]) != 1 || len(by["ES256"][StateActive]) != 1 {
		t.Errorf("after Ensure with HS384: %v", by)
	}
	if err := m.Delete(ctx, "e"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := m.Get(ctx, "e"); !errors.Is(err, ErrNoKeyset) {
		t.Errorf("Get after Delete: %v, want ErrNoKeyset", err)
	}
	if raw := st.raw(secretKind, "e"); raw != nil {
		t.Errorf("record still in store after Delete")
	}
}

// TestKeysetInvariantRefused writes broken records straight into the store
// and checks the manager refuses to read them, and that validateKeyset
// refuses to write them.
func TestKeysetInvariantRefused(t *testing.T) {
	ctx := t.Context()
	es1, err := NewKey("ES256", UseSig, KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	es2, err := NewKey("ES256", UseSig, KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	active := func(k Key) Key { k.State, k.Activated = StateActive, now; return k }
	next := func(k Key) Key { k.State = StateNext; return k }
	tampered := active(es1)
	tampered.Kid = "not-the-thumbprint"
	tampered.JWK.KeyID = tampered.Kid
	wrongAlg := active(es1)
	wrongAlg.Alg = "ES384"
	retiredNoDeadline := es2
	retiredNoDeadline.State = StateRetired
	revokedActive := active(es1)
	revokedActive.Revoked = true

	tests := []struct {
		name string
		keys []Key
	}{
		{"two active keys for one alg", []Key{active(es1), active(es2)}},
		{"no active key for an alg", []Key{next(es1)}},
		{"duplicate kid", []Key{active(es1), next(es1)}},
		{"kid is not the thumbprint", []Key{tampered}},
		{"alg does not match the JWK", []Key{wrongAlg}},
		{"retired without deadline", []Key{active(es1), retiredNoDeadline}},
		{"revoked key still active", []Key{revokedActive, active(es2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := Keyset{Name: "broken", Keys: tt.keys, Updated: now}
			if err := validateKeyset(ks); !errors.Is(err, ErrInvalidKeyset) {
				t.Errorf("validateKeyset = %v, want ErrInvalidKeyset", err)
			}
			data, err := encodeKeyset(ks)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			m, st, _ := newKeysetsForTest(t)
			st.put(secretKind, "broken", data)
			if _, err := m.Get(ctx, "broken"); !errors.Is(err, ErrInvalidKeyset) {
				t.Errorf("Get of broken record = %v, want ErrInvalidKeyset", err)
			}
			if _, err := m.Rotate(ctx, "broken", RotateOptions{}); !errors.Is(err, ErrInvalidKeyset) {
				t.Errorf("Rotate of broken record = %v, want ErrInvalidKeyset", err)
			}
			if err := m.Revoke(ctx, "broken", es1.Kid); !errors.Is(err, ErrInvalidKeyset) {
				t.Errorf("Revoke on broken record = %v, want ErrInvalidKeyset", err)
			}
			if got := st.raw(secretKind, "broken"); string(got) != string(data) {
				t.Errorf("broken record was rewritten")
			}
		})
	}
	t.Run("valid record reads back", func(t *testing.T) {
		ks := Keyset{Name: "fine", Keys: []Key{active(es1), next(es2)}, Updated: now}
		if err := validateKeyset(ks); err != nil {
			t.Fatalf("validateKeyset: %v", err)
		}
		data, _ := encodeKeyset(ks)
		m, st, _ := newKeysetsForTest(t)
		st.put(secretKind, "fine", data)
		info, err := m.Get(ctx, "fine")
		if err != nil || len(info.Keys) != 2 {
			t.Errorf("Get = %+v, %v", info, err)
		}
	})
	t.Run("record from a newer flowd", func(t *testing.T) {
		m, st, _ := newKeysetsForTest(t)
		st.put(secretKind, "future", []byte(`{"v":99,"name":"future","keys":[]}`))
		if _, err := m.Get(ctx, "future"); !errors.Is(err, ErrInvalidKeyset) {
			t.Errorf("Get = %v, want ErrInvalidKeyset", err)
		}
	})
}

func TestImportIntoKeyset(t *testing.T) {
	ctx := t.Context()
	m, _, _ := newKeysetsWith(t, "imp")
	info, err := m.Import(ctx, "imp", keyFixture(t, "rfc7517-a2-rsa.json"), "RS256", "", StateActive)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if info.Kid != rfc7638Kid || info.State != StateActive || info.Size != 2048 {
		t.Errorf("Import = %+v", info)
	}
	if _, err := m.Import(ctx, "imp", keyFixture(t, "rfc7517-a2-rsa.json"), "RS256", "", StateNext); !errors.Is(err, ErrInvalidKeyset) {
		t.Errorf("second Import of the same key = %v, want ErrInvalidKeyset", err)
	}
	if err := m.Revoke(ctx, "imp", rfc7638Kid); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := m.Import(ctx, "imp", keyFixture(t, "rfc7517-a2-rsa.json"), "RS256", "", StateNext); !errors.Is(err, ErrInvalidKeyset) {
		t.Errorf("re-Import of a revoked key = %v, want ErrInvalidKeyset", err)
	}
}

func TestReloadAndSubscribe(t *testing.T) {
	ctx := t.Context()
	m1, st, clk := newKeysetsWith(t, "shared", "ES256")
	var mu sync.Mutex
	var heard []string
	cancel := m1.Subscribe(func(name string) {
		mu.Lock()
		heard = append(heard, name)
		mu.Unlock()
	})
	defer cancel()
	heardCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(heard)
	}

	v0 := m1.Version("shared")
	if v0 == 0 {
		t.Fatalf("Version after Create = 0")
	}
	body1, etag1, _ := m1.JWKS(ctx, "shared")

	m2 := anotherNode(st, clk) // "another process"
	if _, err := m2.Rotate(ctx, "shared", RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	body2, etag2, _ := m2.JWKS(ctx, "shared")

	stale, staleTag, _ := m1.JWKS(ctx, "shared")
	if string(stale) != string(body1) || staleTag != etag1 {
		t.Errorf("m1 cache changed without Reload")
	}
	if err := m1.Reload(ctx, "shared"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	got, gotTag, _ := m1.JWKS(ctx, "shared")
	if string(got) != string(body2) || gotTag != etag2 {
		t.Errorf("m1 JWKS after Reload differs from m2's")
	}
	if heardCount() != 1 {
		t.Errorf("subscriber heard %d changes after Reload, want 1", heardCount())
	}
	v1 := m1.Version("shared")
	if v1 <= v0 {
		t.Errorf("Version did not grow: %d -> %d", v0, v1)
	}
	if err := m1.Reload(ctx, "shared"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if heardCount() != 1 || m1.Version("shared") != v1 {
		t.Errorf("Reload without change notified (%d) or bumped version (%d -> %d)", heardCount(), v1, m1.Version("shared"))
	}
	if _, err := m1.Rotate(ctx, "shared", RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	if heardCount() != 2 {
		t.Errorf("subscriber heard %d changes after Rotate, want 2", heardCount())
	}
	cancel()
	if _, err := m1.Rotate(ctx, "shared", RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	if heardCount() != 2 {
		t.Errorf("subscriber called after cancel")
	}
	if err := m2.Delete(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	if err := m1.Reload(ctx, "shared"); !errors.Is(err, ErrNoKeyset) {
		t.Errorf("Reload of deleted keyset = %v, want ErrNoKeyset", err)
	}
	if _, _, err := m1.JWKS(ctx, "shared"); !errors.Is(err, ErrNoKeyset) {
		t.Errorf("JWKS of deleted keyset = %v, want ErrNoKeyset", err)
	}
	if m1.Version("shared") != 0 {
		t.Errorf("Version of deleted keyset = %d, want 0", m1.Version("shared"))
	}
}

func TestSourceVerifyKeys(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsForTest(t)
	src := m.Source("vk") // before the keyset exists
	if _, err := src.VerifyKeys(ctx, false); !errors.Is(err, ErrNoKeyset) {
		t.Fatalf("VerifyKeys of missing keyset = %v, want ErrNoKeyset", err)
	}
	createKeyset(t, m, "vk", "ES256", "HS512", "RSA-OAEP-256", "A256KW")
	clk.Advance(time.Minute)
	if _, err := m.Rotate(ctx, "vk", RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	info, _ := m.Get(ctx, "vk")
	by := keysByState(info)
	if err := m.Revoke(ctx, "vk", by["ES256"][StateRetired][0]); err != nil {
		t.Fatal(err)
	}
	info, _ = m.Get(ctx, "vk")

	want := map[string]KeyInfo{}
	for _, k := range info.Keys {
		if !k.Revoked && k.Use == UseSig {
			want[k.Kid] = k
		}
	}
	vks, err := src.VerifyKeys(ctx, true)
	if err != nil {
		t.Fatalf("VerifyKeys: %v", err)
	}
	if len(vks) != len(want) {
		t.Fatalf("VerifyKeys has %d keys, want %d (sig keys, not revoked)", len(vks), len(want))
	}
	for _, vk := range vks {
		k, ok := want[vk.JWK.KeyID]
		if !ok {
			t.Errorf("unexpected verify key %v", vk)
			continue
		}
		if vk.State != k.State || vk.JWK.Algorithm != k.Alg || vk.JWK.Use != string(UseSig) {
			t.Errorf("verify key %v, want state %s alg %s use sig", vk, k.State, k.Alg)
		}
		switch k.Kty {
		case "oct":
			if b, ok := vk.JWK.Key.([]byte); !ok || len(b)*8 != k.Size {
				t.Errorf("oct verify key %s has no %d-bit secret", k.Kid, k.Size)
			}
		default:
			if !vk.JWK.IsPublic() {
				t.Errorf("asymmetric verify key %s is not public", k.Kid)
			}
		}
	}
	if stateRank(vks[0].State) != 0 {
		t.Errorf("first verify key is %s, want an active key first", vks[0].State)
	}
	again, _ := src.VerifyKeys(ctx, false)
	if &again[0] != &vks[0] {
		t.Errorf("VerifyKeys rebuilt the slice without a change")
	}
}

func TestConcurrentLoad(t *testing.T) {
	ctx := t.Context()
	_, st, clk := newKeysetsWith(t, "c", "ES256")
	fresh := anotherNode(st, clk)
	var wg sync.WaitGroup
	bodies := make([][]byte, 8)
	for i := range bodies {
		wg.Go(func() {
			b, _, err := fresh.JWKS(ctx, "c")
			if err != nil {
				t.Errorf("JWKS: %v", err)
			}
			bodies[i] = b
		})
	}
	wg.Wait()
	for _, b := range bodies[1:] {
		if string(b) != string(bodies[0]) {
			t.Errorf("concurrent first loads disagree")
		}
	}
}

// ExampleKeysets shows the lifecycle: create a keyset, sign, serve the
// JWKS, rotate.
func ExampleKeysets() {
	ctx := context.Background()
	mem, err := memstore.New(memstore.Options{}) // a *store.Bolt in flowd
	if err != nil {
		fmt.Println(err)
		return
	}
	keysets := NewKeysets(mem)
	if err := keysets.Create(ctx, "auth", "ES256"); err != nil {
		fmt.Println(err)
		return
	}
	signer := NewSigner(keysets)
	_, kid, err := signer.Sign(ctx, SignRequest{
		Keyset: "auth", Alg: "ES256", Typ: "at+jwt", TTL: 5 * time.Minute,
		Issuer: "https://issuer.example", Subject: "alice", Audience: []string{"api"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	body, etag, _ := keysets.JWKS(ctx, "auth")
	var jwks struct{ Keys []map[string]any }
	_ = json.Unmarshal(body, &jwks)
	fmt.Println("published keys:", len(jwks.Keys), "signed by the first:", jwks.Keys[0]["kid"] == kid)

	rot, _ := keysets.Rotate(ctx, "auth", RotateOptions{RetireAfter: time.Hour})
	_, etag2, _ := keysets.JWKS(ctx, "auth")
	fmt.Println("retired the signing key:", slices.Equal(rot.Retired, []string{kid}), "etag changed:", etag != etag2)
	// Output:
	// published keys: 2 signed by the first: true
	// retired the signing key: true etag changed: true
}
