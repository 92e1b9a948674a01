package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/jose"
)

// The token debugger decodes a pasted JWT (unverified) and validates it
// with a jose.Validator built exactly as jose.validate builds one, from
// the same policy fields. The token arrives in a POST body only and is
// never logged, stored or echoed into the page.

func (s *Server) debuggerForm() DebuggerForm {
	// The prebuilt flows' policy: keyset main, this server's issuer,
	// audience flowd-api (protected-api, introspect).
	return DebuggerForm{Source: "keyset", Keyset: "main", Algorithms: "RS256 ES256", Issuer: s.d.Issuer,
		Audience: "flowd-api", RequireExp: true, Leeway: "30s"}
}

func (s *Server) debuggerView(r *http.Request, f DebuggerForm) DebuggerView {
	v := DebuggerView{CSRF: CSRFToken(r), Form: f}
	if s.d.Keysets != nil {
		v.Keysets, _ = s.d.Keysets.List(r.Context())
	}
	return v
}

func (s *Server) debuggerPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, DebuggerPage(s.debuggerView(r, s.debuggerForm())))
}

func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
}

func (s *Server) debuggerPost(w http.ResponseWriter, r *http.Request) {
	form := DebuggerForm{
		Source: r.PostFormValue("source"), Keyset: r.PostFormValue("keyset"), JWKSURL: strings.TrimSpace(r.PostFormValue("jwks_url")),
		Algorithms: r.PostFormValue("algorithms"), Issuer: strings.TrimSpace(r.PostFormValue("issuer")),
		Audience: r.PostFormValue("audience"), Types: r.PostFormValue("types"),
		AudienceOptional: r.PostFormValue("audience_optional") == "true", RequireExp: r.PostFormValue("require_exp") == "true",
		Leeway: strings.TrimSpace(r.PostFormValue("leeway")), MaxAge: strings.TrimSpace(r.PostFormValue("max_age")),
		RequiredClaims: r.PostFormValue("required_claims"),
	}
	v := s.debuggerView(r, form)
	token := strings.TrimSpace(r.PostFormValue("token"))
	token = strings.TrimPrefix(strings.TrimPrefix(token, "Bearer "), "bearer ")
	if token == "" {
		v.FormErr = "Paste a token."
		s.render(w, r, http.StatusBadRequest, DebuggerPage(v))
		return
	}
	res, ferr := s.debug(r, form, token)
	v.Result, v.FormErr = res, ferr
	status := http.StatusOK
	if ferr != "" {
		status = http.StatusBadRequest
	}
	s.render(w, r, status, DebuggerPage(v))
}

// debug decodes and validates; the second result is a policy mistake.
func (s *Server) debug(r *http.Request, f DebuggerForm, token string) (*DebugResult, string) {
	dec, err := jose.Decode(token)
	if err != nil {
		return &DebugResult{DecodeErr: err.Error()}, ""
	}
	res := &DebugResult{Kind: dec.Kind, Header: prettyJSON(dec.Header), Claims: prettyJSON(dec.Claims)}
	if dec.Claims == nil {
		res.Claims = "(not a JSON object, or encrypted)"
	}
	res.Kid, _ = dec.Header["kid"].(string)
	res.Timeline = tokenTimeline(dec.Claims, s.now().UTC())

	p := jose.DefaultPolicy()
	p.Now = s.now
	p.Algorithms = fields(f.Algorithms)
	p.Issuer = f.Issuer
	p.Audience = fields(f.Audience)
	p.AudienceOptional = f.AudienceOptional
	p.Types = fields(f.Types)
	p.RequireExp = f.RequireExp
	p.RequiredClaims = fields(f.RequiredClaims)
	var perr error
	if p.Leeway, perr = optDuration(f.Leeway); perr != nil {
		return res, "Leeway: " + perr.Error()
	}
	if p.MaxAge, perr = optDuration(f.MaxAge); perr != nil {
		return res, "Max age: " + perr.Error()
	}
	var keys []jose.KeyInfo
	switch f.Source {
	case "remote":
		src, err := jose.NewRemoteJWKS(jose.RemoteJWKSOptions{URL: f.JWKSURL, Logger: s.log, Timeout: 5 * time.Second})
		if err != nil {
			return res, "JWKS URL: " + strings.TrimPrefix(strings.TrimPrefix(err.Error(), jose.ErrInvalidPolicy.Error()+": "), "remote JWKS: ")
		}
		p.Source = src
	default:
		if s.d.Keysets == nil || f.Keyset == "" {
			return res, "Keyset: choose one"
		}
		info, err := s.d.Keysets.Get(r.Context(), f.Keyset)
		if err != nil {
			return res, "Keyset: " + err.Error()
		}
		keys = info.Keys
		p.Source = s.d.Keysets.Source(f.Keyset)
	}
	val, err := jose.NewValidator(p)
	if err != nil {
		return res, formWords(strings.TrimPrefix(err.Error(), jose.ErrInvalidPolicy.Error()+": "))
	}
	out, err := val.Validate(r.Context(), token)
	var te *jose.TokenError
	switch {
	case err == nil:
		res.Valid = true
		res.Kid, res.KeyAlg, res.KeyState = out.Key.JWK.KeyID, out.Key.JWK.Algorithm, string(out.Key.State)
	case errors.As(err, &te):
		res.Reason, res.Detail = string(te.Reason), te.Detail
	default:
		res.Reason, res.Detail = "not judged", err.Error()
	}
	if res.KeyState == "" {
		res.KeyState = "unknown"
		if f.Source == "remote" {
			res.KeyState = "remote"
		}
		for _, k := range keys {
			if k.Kid == res.Kid {
				res.KeyState, res.KeyAlg = keyState(k), k.Alg
			}
		}
	}
	return res, ""
}

// formWords rewrites a policy error in the words of the debugger's form:
// its labels, not the policy's field names.
func formWords(msg string) string {
	for _, r := range []struct{ from, to string }{
		{"algorithms:", "Algorithms:"},
		{"source:", "Key source:"},
		{"issuer:", "Issuer:"},
		{"audience:", "Audience:"},
		{"types:", "Types:"},
		{"leeway:", "Leeway:"},
		{"max age:", "Max age:"},
		{"unless AudienceOptional is set", "unless \"audience optional\" is ticked"},
	} {
		msg = strings.Replace(msg, r.from, r.to, 1)
	}
	return msg
}

func optDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 30s", s)
	}
	return d, nil
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

// tokenTimeline places iat, nbf and exp (when present) and now on one row.
func tokenTimeline(claims map[string]any, now time.Time) *Timeline {
	var marks []Mark
	for _, name := range []string{"iat", "nbf", "exp"} {
		if n, ok := claims[name].(float64); ok {
			marks = append(marks, Mark{Name: name, At: time.Unix(int64(n), 0).UTC()})
		}
	}
	if len(marks) == 0 {
		return nil
	}
	start, end := now, now
	for _, m := range marks {
		if m.At.Before(start) {
			start = m.At
		}
		if m.At.After(end) {
			end = m.At
		}
	}
	pad := max(end.Sub(start)/10, time.Minute)
	start, end = start.Add(-pad), end.Add(pad)
	row := TimelineRow{Label: "token", Marks: marks}
	var from, to time.Time
	for _, m := range marks {
		switch m.Name {
		case "nbf":
			from = m.At
		case "iat":
			if from.IsZero() {
				from = m.At
			}
		case "exp":
			to = m.At
		}
	}
	if !from.IsZero() && !to.IsZero() {
		state := "valid"
		if now.After(to) || now.Before(from) {
			state = "expired"
		}
		row.Segments = []Segment{{State: state, From: from, To: to, Title: "valid from " + from.Format(time.RFC3339) + " to " + to.Format(time.RFC3339)}}
	}
	return &Timeline{Start: start, End: end, Now: now, Rows: []TimelineRow{row}, Ticks: ticks(start, end, 4)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}
