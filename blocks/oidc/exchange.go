package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/flowd/flowd/store"
)

// The code exchange is one transaction over every record it reads or
// writes (store.KV.UpdateKVs): the code, its grant, the grant index of the
// session the code was issued in, that session, and the consent it was
// issued under. Spending the code, creating the grant with its first
// refresh token, and linking the grant to its session and consent commit
// together or not at all, so of many exchanges of one code racing on
// several nodes exactly one wins, and every other one finds the code
// spent and, in the same kind of transaction, revokes the grant that
// exists by then (RFC 6749 §4.1.2). A logout or a consent withdrawal
// writes the session index or the consent: it is ordered before the
// exchange (which is then refused) or after it (and finds the grant).

// Outcomes of the exchange transaction.
const (
	exUnknown     = "unknown"      // no such code (never issued, or cleaned up)
	exWrongClient = "wrong_client" // another client's code: left unspent for its owner
	exReplayed    = "replayed"     // spent before: the grant is revoked
	exRefused     = "refused"      // spent now, no grant made (desc says why)
	exRedeemed    = "redeemed"     // spent now, grant made
	exPrune       = "prune"        // the consent is full: find its ended grants, then run again
)

// exchangeTxn is one exchange's input: what the code must be checked
// against and what the grant is made of, all known before the
// transaction.
type exchangeTxn struct {
	clientID string
	codeKey  string
	now      time.Time
	// check refuses a code that is live and this client's but does not fit
	// the request (redirect URI, PKCE, user gone): "" lets it through.
	check func(rec *codeRecord) string
	// grant makes the grant for a redeemed code.
	grant func(rec *codeRecord) *grantRecord
	// revokeKeep is how long a replay's tombstone lasts.
	revokeKeep time.Duration
}

// exchangeResult is the transaction's verdict (its last call's).
type exchangeResult struct {
	outcome string
	desc    string // exRefused: the error description
	busy    string // exRefused by a limit: what to log
	rec     codeRecord
	revoked bool     // exReplayed: this exchange is the one that revoked the grant
	prune   []string // exPrune: the consent's grants
}

// refs of one exchange, in the order of the transaction; -1 when absent.
type exchangeRefs struct {
	refs                        []store.KVRef
	code, grant, sg, sess, cons int
}

func newExchangeRefs(codeKey string, pre *codeRecord) exchangeRefs {
	r := exchangeRefs{code: 0, grant: 1, sg: -1, sess: -1, cons: -1}
	r.refs = []store.KVRef{{NS: nsCodes, Key: codeKey}, {NS: nsGrants, Key: pre.GrantID}}
	if pre.Used {
		return r // a replay revokes the grant; nothing else is read
	}
	if pre.Session != "" {
		r.sg, r.sess = len(r.refs), len(r.refs)+1
		r.refs = append(r.refs, store.KVRef{NS: nsSessionGrants, Key: pre.Session}, store.KVRef{NS: nsSessions, Key: pre.Session})
	}
	if pre.Consent != "" {
		r.cons = len(r.refs)
		r.refs = append(r.refs, store.KVRef{NS: nsConsents, Key: consentKey(pre.Sub, pre.ClientID)})
	}
	return r
}

func decodeRec[T any](ns string, raw []byte) (*T, error) {
	if raw == nil {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("%s record: %w", ns, err)
	}
	return v, nil
}

// exchange runs the transaction. pre is the code as read before it (its
// grant id, session and consent never change); ended lists the consent's
// grants that have ended (nil until an exPrune asked for them).
func exchange(ctx context.Context, kv KV, x exchangeTxn, pre *codeRecord, ended map[string]bool) (exchangeResult, error) {
	r := newExchangeRefs(x.codeKey, pre)
	var res exchangeResult
	err := kv.UpdateKVs(ctx, r.refs, func(old [][]byte) ([][]byte, error) {
		res = exchangeResult{} // the function may run again: nothing kept from a first call
		out := slices.Clone(old)
		var err error
		res, err = x.decide(r, old, out, ended)
		return out, err
	})
	return res, err
}

// decide is the transaction's function: it reads old and writes the new
// values into out (out starts as old: unchanged).
func (x exchangeTxn) decide(r exchangeRefs, old, out [][]byte, ended map[string]bool) (exchangeResult, error) {
	var res exchangeResult
	code, err := decodeRec[codeRecord](nsCodes, old[r.code])
	if err != nil {
		return res, err
	}
	switch {
	case code == nil:
		res.outcome = exUnknown
		return res, nil
	case code.ClientID != x.clientID:
		// Not this client's to spend: leave it for its owner.
		res.outcome = exWrongClient
		return res, nil
	}
	res.rec = *code
	g, err := decodeRec[grantRecord](nsGrants, old[r.grant])
	if err != nil {
		return res, err
	}
	if code.Used {
		res.outcome = exReplayed
		switch {
		case g == nil:
			// Spent without a grant (refused): a tombstone keeps any
			// later creation from going live.
			g = &grantRecord{ID: code.GrantID, ClientID: code.ClientID, Created: x.now.Unix(), Purge: x.now.Add(x.revokeKeep).Unix()}
		case g.Revoked != "":
			return res, nil
		}
		g.Revoked = "code_replayed"
		res.revoked = true
		out[r.grant], err = json.Marshal(g)
		return res, err
	}
	code.Used = true
	if out[r.code], err = json.Marshal(code); err != nil {
		return res, err
	}
	refuse := func(desc string) (exchangeResult, error) {
		// Spent, and nothing else written.
		for i := range out {
			if i != r.code {
				out[i] = old[i]
			}
		}
		res.outcome, res.desc = exRefused, desc
		return res, nil
	}
	switch {
	case x.now.Unix() >= code.Expires:
		return refuse(badCode)
	case code.Session != "" && r.sg < 0, code.Consent != "" && r.cons < 0:
		// Read as used before, unused now: cannot happen (a code is
		// never unspent); refused rather than trusted.
		return refuse(badCode)
	case g != nil:
		// A grant for an unspent code: a logout or a withdrawal revoked
		// it ahead of its creation (a tombstone). It stays revoked.
		return refuse(badCode)
	}
	if desc := x.check(code); desc != "" {
		return refuse(desc)
	}
	grant := x.grant(code)
	if code.Session != "" {
		sg, err := decodeRec[sessionGrantsRecord](nsSessionGrants, old[r.sg])
		if err != nil {
			return res, err
		}
		sess, err := decodeRec[sessionRecord](nsSessions, old[r.sess])
		if err != nil {
			return res, err
		}
		if sg == nil {
			sg = &sessionGrantsRecord{}
		}
		switch {
		case sg.Ended:
			return refuse(badCode)
		case len(sg.Grants) >= maxSessionGrants:
			res.busy = "session grant limit reached: code refused"
			return refuse("too many authorizations in this session: sign in again")
		}
		// The index must answer for the grant while the session can
		// still log out (its life plus the time to confirm), refreshes
		// extending the grant notwithstanding.
		purge := grant.Purge
		if sess != nil {
			purge = max(purge, sess.Purge+int64(maxConfirmTTL/time.Second))
		}
		sg.Grants = append(sg.Grants, sessionGrant{ID: code.GrantID, Offline: isOffline(code.Scope)})
		sg.Purge = max(sg.Purge, purge)
		if out[r.sg], err = json.Marshal(sg); err != nil {
			return res, err
		}
	}
	if code.Consent != "" {
		c, err := decodeRec[consentRecord](nsConsents, old[r.cons])
		if err != nil {
			return res, err
		}
		if c == nil || c.ID != code.Consent || x.now.Unix() >= c.Purge {
			return refuse("the consent this code was issued under was withdrawn")
		}
		if len(c.Grants) >= maxConsentGrants {
			if ended == nil {
				// Which of its grants have ended needs reading them all:
				// outside the transaction, then again.
				res = exchangeResult{outcome: exPrune, prune: slices.Clone(c.Grants)}
				copy(out, old)
				return res, nil
			}
			c.Grants = slices.DeleteFunc(c.Grants, func(g string) bool { return ended[g] })
		}
		if len(c.Grants) >= maxConsentGrants {
			res.busy = "consent grant limit reached: code refused"
			return refuse("too many live authorizations under this consent")
		}
		c.Grants = append(c.Grants, code.GrantID)
		if out[r.cons], err = json.Marshal(c); err != nil {
			return res, err
		}
	}
	if out[r.grant], err = json.Marshal(grant); err != nil {
		return res, err
	}
	res.outcome = exRedeemed
	return res, nil
}

// badCode is the description of every refusal that must not tell an
// attacker more.
const badCode = "the code is invalid, expired or already used"
