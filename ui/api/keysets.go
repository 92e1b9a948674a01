package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine"
)

// RegisterKeysets adds the keyset endpoints. Every answer is built from
// jose's public descriptions (KeysetInfo, KeyInfo, the published JWKS
// bytes): private key material has no path to them.
//
//	GET  /keysets                          every keyset with its keys' public info
//	GET  /keysets/{name}                   one keyset
//	POST /keysets/{name}/rotate            body {"alg"?, "retire_after"?: "48h", "force"?: true}; answers rotation + keyset (+ warning)
//	POST /keysets/{name}/keys/{kid}/revoke emergency revoke: the key leaves the JWKS at once
//	GET  /keysets/{name}/jwks              the JWKS exactly as served, with its ETag
func RegisterKeysets(h *Handler, ks *jose.Keysets) {
	kh := &keysetHandlers{ks: ks, app: h.app}
	h.Handle("GET /keysets", kh.list)
	h.Handle("GET /keysets/{name}", kh.get)
	h.Handle("POST /keysets/{name}/rotate", kh.rotate)
	h.Handle("POST /keysets/{name}/keys/{kid}/revoke", kh.revoke)
	h.Handle("GET /keysets/{name}/jwks", kh.jwks)
}

type keysetHandlers struct {
	ks  *jose.Keysets
	app *app.App
}

func (kh *keysetHandlers) list(w http.ResponseWriter, r *http.Request) error {
	names, err := kh.ks.List(r.Context())
	if err != nil {
		return err
	}
	out := make([]keysetWithUsage, 0, len(names))
	for _, name := range names {
		info, err := kh.ks.Get(r.Context(), name)
		if errors.Is(err, jose.ErrNoKeyset) {
			continue // deleted since the listing
		}
		if err != nil {
			return err
		}
		out = append(out, kh.withUsage(r.Context(), info))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"keysets": out})
	return nil
}

func (kh *keysetHandlers) get(w http.ResponseWriter, r *http.Request) error {
	info, err := kh.ks.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, kh.withUsage(r.Context(), info))
	return nil
}

// rotateRequest is the body of POST /keysets/{name}/rotate.
type rotateRequest struct {
	Alg string `json:"alg"`
	// RetireAfter is a Go duration; empty: the overlap the keyset's
	// deployed jose.rotate uses (jose.RolloverPolicy.RetireAfter).
	RetireAfter string `json:"retire_after"`
	// Force accepts a retire_after shorter than the keyset's tokens live
	// plus its JWKS max-age; the answer's warning says what breaks.
	Force bool `json:"force"`
}

// rotate rotates with the keyset's configured overlap, read from the
// deployed flows, and refuses one shorter than the longest token lifetime
// plus the JWKS max-age unless forced.
func (kh *keysetHandlers) rotate(w http.ResponseWriter, r *http.Request) error {
	var req rotateRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	name := r.PathValue("name")
	before, err := kh.ks.Get(ctx, name)
	if err != nil {
		return err
	}
	flows, err := kh.deployedFlows(ctx)
	if err != nil {
		return err
	}
	pol := jose.RolloverPolicyFor(kh.app.Registry(), flows, name)
	opts := jose.RotateOptions{Alg: req.Alg, RetireAfter: pol.RetireAfter}
	if req.RetireAfter != "" {
		d, err := time.ParseDuration(req.RetireAfter)
		if err != nil || d <= 0 {
			return Errorf(http.StatusBadRequest, "bad_request", "retire_after must be a positive duration like \"48h\"")
		}
		opts.RetireAfter = d
	}
	risk := pol.CheckOverlap(opts.RetireAfter, retiring(before, req.Alg), time.Now())
	if risk != "" && !req.Force {
		return Errorf(http.StatusBadRequest, "overlap_too_short",
			"%s. Rotate with retire_after of at least %s, or send \"force\": true to accept that", risk, engine.FormatDuration(pol.MinRetireAfter()))
	}
	rot, err := kh.ks.Rotate(ctx, name, opts)
	if err != nil {
		return err
	}
	info, err := kh.ks.Get(ctx, name)
	if err != nil {
		return err
	}
	out := map[string]any{"rotation": rot, "keyset": info, "retire_after": opts.RetireAfter.String()}
	if risk != "" {
		out["warning"] = "forced: " + risk
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// retiring lists the kids a rotation of alg ("" every alg) retires: the
// active signing keys.
func retiring(info jose.KeysetInfo, alg string) []string {
	var out []string
	for _, k := range info.Keys {
		if k.State == jose.StateActive && !k.Revoked && k.Use == jose.UseSig && (alg == "" || k.Alg == alg) {
			out = append(out, k.Kid)
		}
	}
	return out
}

// deployedFlows are the flows running now, as the runtime holds them.
func (kh *keysetHandlers) deployedFlows(ctx context.Context) ([]*engine.Flow, error) {
	list, err := kh.app.ListFlows(ctx)
	if err != nil {
		return nil, err
	}
	var out []*engine.Flow
	for _, fi := range list {
		if f, _, ok := kh.app.DeployedFlow(fi.ID); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

func (kh *keysetHandlers) revoke(w http.ResponseWriter, r *http.Request) error {
	name, kid := r.PathValue("name"), r.PathValue("kid")
	if err := kh.ks.Revoke(r.Context(), name, kid); err != nil {
		return err
	}
	info, err := kh.ks.Get(r.Context(), name)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, info)
	return nil
}

// jwks answers the cached bytes themselves, so the preview is exactly what
// jose.jwks serves.
func (kh *keysetHandlers) jwks(w http.ResponseWriter, r *http.Request) error {
	body, etag, err := kh.ks.JWKS(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", jose.JWKSContentType)
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}
