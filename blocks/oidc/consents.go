package oidc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Consents: what a person allowed a client, remembered per person and
// client as the set of scopes consented to (a request whose scopes are all
// in it needs no new consent; consenting to more adds them). Each consent
// also lists the grants made under it, so that withdrawing it ends them.
//
//	oidc_consents/<sub>/<client id>  consentRecord
//
// The records live in the user registry's store, the provider state's in
// flowd (one store): withdrawing a consent revokes its grants there.
const nsConsents = "oidc_consents"

// maxConsentGrants bounds the grants one consent lists (the record is
// rewritten by every code exchange under it). When it is full, the grants
// that have ended are dropped; a consent with this many live grants makes
// no more until some end.
const maxConsentGrants = 1000

// Errors of the consent registry.
var (
	ErrNoConsent = errors.New("no such consent")
)

// consentRecord is one person's consent to one client.
type consentRecord struct {
	// ID changes each time the consent is given afresh (after a
	// withdrawal): a code issued under an earlier one is refused.
	ID       string   `json:"id"`
	Sub      string   `json:"sub"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	Grants   []string `json:"grants,omitempty"`
	Given    int64    `json:"given"` // last time the person said yes
	Purge    int64    `json:"purge"` // the consent is forgotten then
}

// Consent is what the admin API and the CLI show of a consent.
type Consent struct {
	ClientID string    `json:"client_id"`
	Scopes   []string  `json:"scopes"`
	Given    time.Time `json:"given"`
	Expires  time.Time `json:"expires"`
	Grants   int       `json:"grants"` // grants made under it (some may have ended)
}

func consentKey(sub, clientID string) string { return sub + "/" + clientID }

// covers reports whether a live consent includes every scope asked for.
func (c *consentRecord) covers(scopes []string, now time.Time) bool {
	if c == nil || now.Unix() >= c.Purge {
		return false
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// consent returns a person's consent to a client, nil when none.
func (u *Users) consent(ctx context.Context, sub, clientID string) (*consentRecord, error) {
	return getRec[consentRecord](ctx, u.kv, nsConsents, consentKey(sub, clientID))
}

// giveConsent records that the person consents to scopes for the client
// until now+remember, adding to what was consented before. It returns the
// consent's id.
func (u *Users) giveConsent(ctx context.Context, sub, clientID string, scopes []string, now time.Time, remember time.Duration) (string, error) {
	fresh := newID()
	var id string
	err := updateRec(ctx, u.kv, nsConsents, consentKey(sub, clientID), func(cur *consentRecord) (*consentRecord, error) {
		if cur == nil || now.Unix() >= cur.Purge {
			cur = &consentRecord{ID: fresh, Sub: sub, ClientID: clientID}
		}
		id = cur.ID // set on every call: the function may run again
		for _, s := range scopes {
			if !slices.Contains(cur.Scopes, s) {
				cur.Scopes = append(cur.Scopes, s)
			}
		}
		cur.Given = now.Unix()
		cur.Purge = max(cur.Purge, now.Add(remember).Unix())
		return cur, nil
	})
	return id, err
}

// Consents lists what a person consented to, by client id.
func (u *Users) Consents(ctx context.Context, username string) ([]Consent, error) {
	usr, err := u.Get(ctx, username)
	if err != nil {
		return nil, err
	}
	keys, err := u.kv.ListKV(ctx, nsConsents)
	if err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	out := []Consent{}
	now := u.now()
	for _, k := range keys {
		if !strings.HasPrefix(k, usr.Sub+"/") {
			continue
		}
		c, err := getRec[consentRecord](ctx, u.kv, nsConsents, k)
		if err != nil {
			return nil, err
		}
		if c == nil || now.Unix() >= c.Purge {
			continue
		}
		out = append(out, Consent{ClientID: c.ClientID, Scopes: slices.Clone(c.Scopes), Given: time.Unix(c.Given, 0).UTC(),
			Expires: time.Unix(c.Purge, 0).UTC(), Grants: len(c.Grants)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out, nil
}

// WithdrawConsent forgets a person's consent to a client and ends every
// grant made under it (their refresh tokens, and their access tokens
// wherever oidc.grant_active checks them). It returns how many grants it
// ended; ErrNoConsent when there was none. OnConsentWithdrawn hears of
// it once the consent is gone, with the grants ended before any failure.
func (u *Users) WithdrawConsent(ctx context.Context, username, clientID string) (n int, err error) {
	usr, err := u.Get(ctx, username)
	if err != nil {
		return 0, err
	}
	if clientID == "" || len(clientID) > 128 {
		return 0, ErrNoConsent
	}
	var rec *consentRecord
	err = updateRec(ctx, u.kv, nsConsents, consentKey(usr.Sub, clientID), func(cur *consentRecord) (*consentRecord, error) {
		rec = cur // set on every call: the function may run again
		return nil, nil
	})
	if err != nil {
		return 0, fmt.Errorf("withdraw consent: %w", err)
	}
	if rec == nil {
		return 0, fmt.Errorf("%w: %s has none for %q", ErrNoConsent, usr.Username, clientID)
	}
	if u.OnConsentWithdrawn != nil {
		defer func() { u.OnConsentWithdrawn(ctx, usr.Username, clientID, n) }()
	}
	now := u.now()
	for _, g := range rec.Grants {
		// A grant not created yet (its exchange is between the link and
		// the creation) gets a tombstone that outlives the exchange.
		if err := revokeGrant(ctx, u.kv, g, clientID, "consent_withdrawn", now, grantSlack); err != nil {
			return n, fmt.Errorf("withdraw consent: end grant: %w", err)
		}
		n++
	}
	return n, nil
}

// consentFromMsg reads msg.consent.id ("" when absent or not an id).
func consentFromMsg(msg map[string]any) string {
	id := stringField(mapOf(msg["consent"]), "id")
	if !looksLikeID(id) {
		return ""
	}
	return id
}
