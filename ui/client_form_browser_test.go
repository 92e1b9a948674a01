package ui_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/ui/uitest"
)

// publicJWKS is a JWK Set with one fresh P-256 public key.
func publicJWKS(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	set := map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "app-1", "use": "sig", "alg": "ES256",
		"x": b64(pub[1:33]), "y": b64(pub[33:])}}}
	out, _ := json.Marshal(set)
	return string(out)
}

// TestBrowserClientFormFields: the add form has every field the API takes
// (authentication method, the keys of a private_key_jwt client, DPoP
// binding, PAR, first party), says what is wrong when they do not fit
// together and keeps what was typed, and stores them; the edit page shows
// them and changes first party.
func TestBrowserClientFormFields(t *testing.T) {
	env := uitest.Start(t)
	ctx := adminBrowser(t, env, 1400)
	setValue := func(sel, v string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`document.querySelector(` + jsString(sel) + `).value = ` + jsString(v))
	}
	fill := func(t *testing.T, jwks, jwksURI string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(env.URL+"/admin/clients"),
			chromedp.WaitVisible(css(tid("client-auth-method"))),
			setValue(tid("client-id"), "partner-app"),
			setValue(tid("client-name"), "Partner app"),
			setValue(tid("client-redirects"), "https://partner.example/cb"),
			setValue(tid("client-auth-method"), "private_key_jwt"),
			setValue(tid("client-jwks"), jwks),
			setValue(tid("client-jwks-uri"), jwksURI),
			chromedp.Click(css(tid("client-dpop"))),
			chromedp.Click(css(tid("client-par"))),
			chromedp.Click(css(tid("client-first-party"))),
		)
		if err != nil {
			t.Fatal(err)
		}
	}
	keys := publicJWKS(t)

	for _, tc := range []struct {
		name, jwks, jwksURI, flash string
	}{
		{"no keys", "", "", "private_key_jwt needs the client's public keys: paste its JWK Set, or give the URL where it publishes them."},
		{"keys that are not JSON", "{keys", "", `Public keys: not JSON. Paste the client's JWK Set as JSON, like {"keys": [{"kty": "EC", ...}]}.`},
		{"keys and a URL", keys, "https://partner.example/jwks.json", "Give the public keys or a JWKS URL, not both."},
		{"a key set without keys", `{"keys": []}`, "", ""}, // the registry's own words: checked below
	} {
		t.Run(tc.name, func(t *testing.T) {
			fill(t, tc.jwks, tc.jwksURI)
			uitest.Click(t, ctx, tid("client-add"))
			uitest.WaitJS(t, ctx, "an error", `!!document.querySelector('.flash-error')`)
			if tc.flash != "" {
				waitFlash(t, ctx, tc.flash)
			}
			// The form stays open with what was typed.
			if got := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="client-auth-method"]').value`); got != "private_key_jwt" {
				t.Errorf("method after the error: %q", got)
			}
			if !uitest.JS[bool](t, ctx, `document.querySelector('[data-testid="client-dpop"]').checked && document.querySelector('[data-testid="client-par"]').checked && document.querySelector('[data-testid="client-first-party"]').checked`) {
				t.Error("the options were not kept")
			}
			if _, err := env.FD.Clients().Get(t.Context(), "partner-app"); err == nil {
				t.Fatal("the client was added")
			}
		})
	}

	fill(t, keys, "")
	uitest.Shot(t, ctx, "client-form")
	uitest.Click(t, ctx, tid("client-add"))
	waitFlash(t, ctx, "Added client partner-app.")
	if n := count(t, ctx, tid("client-secret-once")); n != 0 {
		t.Error("a private_key_jwt client was shown a secret")
	}
	cl, err := env.FD.Clients().Get(t.Context(), "partner-app")
	if err != nil {
		t.Fatal(err)
	}
	if cl.TokenEndpointAuthMethod != "private_key_jwt" || len(cl.JWKS) == 0 || cl.JWKSURI != "" || !cl.DPoPBoundAccessTokens ||
		!cl.RequirePAR || !cl.FirstParty || cl.SecretHash != "" {
		t.Fatalf("stored client %+v", cl)
	}
	if got := uitest.JS[string](t, ctx, `document.querySelector('[data-client="partner-app"] [data-testid="client-auth-cell"]').textContent.replace(/\s+/g, ' ').trim()`); got != "private_key_jwt first-party DPoP PAR" {
		t.Errorf("list cell %q", got)
	}

	href := uitest.JS[string](t, ctx, `document.querySelector('[data-client="partner-app"] [data-testid="client-edit"]').href`)
	if err := chromedp.Do(ctx, chromedp.Navigate(href), chromedp.WaitVisible(css(tid("edit-client-form")))); err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{"client-auth-method-shown": "private_key_jwt keys registered with the client",
		"client-dpop-shown": "yes", "client-par-shown": "yes"} {
		if got := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="`+sel+`"]').textContent.replace(/\s+/g, ' ').trim()`); got != want {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(css(tid("client-first-party")))); err != nil {
		t.Fatal(err)
	}
	uitest.Click(t, ctx, tid("client-save"))
	waitFlash(t, ctx, "Saved partner-app.")
	if cl, err := env.FD.Clients().Get(t.Context(), "partner-app"); err != nil || cl.FirstParty || !cl.DPoPBoundAccessTokens || cl.TokenEndpointAuthMethod != "private_key_jwt" {
		t.Fatalf("after the edit: %+v %v", cl, err)
	}
}
