package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// Runs stay on the node that ran them (<data>/runs.db): a cluster store
// would pay quota, history and a write per run for traces almost nobody
// reads. A runs view is merged when it is asked for, never on the request
// path of a flow:
//
//	ClusterRuns(flow) --> this node's runs
//	                  --> Nodes() --> for every other live node, at once (bounded):
//	                        GET <its registry Addr>/admin/peer/runs?flow=..&limit=..
//	                        Authorization: Bearer <JWT, HS256, 60 s, aud = that node, flow = ..>
//	                  --> merged newest first, each run with its node; a node that
//	                      does not answer within peerTimeout is listed with why
//
// The JWT is signed with a key every node reads from the store's secrets
// (kind "system", name "peer_key", made by the first node that needs it,
// sealed with the master key like every secret), so only a node of this
// cluster can mint one; it names the node it is for and the flow it
// reads, and the endpoint serves nothing else (no admin API access).

// PeerRunsPath is where a node serves its own runs to the other nodes
// (Flowd.Handler mounts PeerHandler there).
const PeerRunsPath = "/admin/peer/runs"

const (
	peerKeyKind = "system"
	peerKeyName = "peer_key"
	peerKeyLen  = 32
	// peerTokenLife bounds a peer token's use; nodes need clocks within
	// that of each other (NTP, as expiry checks already require).
	peerTokenLife = 60 * time.Second
	peerAudPrefix = "flowd-node:"
	// peerTimeout bounds one node's answer; maxPeerAnswer its size.
	peerTimeout   = 3 * time.Second
	maxPeerAnswer = 32 << 20
	// peerFanout bounds the calls in flight for one view.
	peerFanout = 8
)

// ErrPeerAuth: a peer call carried no valid node token.
var ErrPeerAuth = errors.New("not a valid node token")

// peers is the client and key of the node-to-node calls.
type peers struct {
	mu       sync.Mutex
	key      []byte
	client   *http.Client
	keyError time.Time // when loading the key last failed
}

// peerKey loads (or, first in the cluster, makes) the signing key. After
// a failure it does not ask the store again for a second, so requests to
// the peer endpoint cannot turn a store outage into a write per request.
func (a *App) peerKey(ctx context.Context) ([]byte, error) {
	a.peers.mu.Lock()
	defer a.peers.mu.Unlock()
	if a.peers.key != nil {
		return a.peers.key, nil
	}
	if time.Since(a.peers.keyError) < time.Second {
		return nil, fmt.Errorf("node key: %w (failed a moment ago)", store.ErrUnavailable)
	}
	var key []byte
	err := a.st.UpdateSecret(ctx, peerKeyKind, peerKeyName, func(old []byte) ([]byte, error) {
		if len(old) == peerKeyLen {
			key = old
			return old, nil
		}
		key = make([]byte, peerKeyLen)
		rand.Read(key)
		return key, nil
	})
	if err != nil {
		a.peers.keyError = time.Now()
		return nil, fmt.Errorf("node key: %w", err)
	}
	a.peers.key = key
	return key, nil
}

type peerClaims struct {
	jwt.Claims
	Flow string `json:"flow"`
}

// peerToken mints a token for node to read flow's runs.
func (a *App) peerToken(ctx context.Context, node, flow string) (string, error) {
	key, err := a.peerKey(ctx)
	if err != nil {
		return "", err
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("node token: %w", err)
	}
	now := a.cfg.Now()
	c := peerClaims{Claims: jwt.Claims{Issuer: a.node, Audience: jwt.Audience{peerAudPrefix + node},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(peerTokenLife))}, Flow: flow}
	tok, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("node token: %w", err)
	}
	return tok, nil
}

// checkPeerToken accepts a token minted by a node of this cluster for
// this node and flow.
func (a *App) checkPeerToken(ctx context.Context, tok, flow string) error {
	if len(tok) > 4096 {
		return fmt.Errorf("%w: too long", ErrPeerAuth)
	}
	// Parsed before the key is read: garbage never reaches the store.
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPeerAuth, err)
	}
	key, err := a.peerKey(ctx)
	if err != nil {
		return err
	}
	var c peerClaims
	if err := parsed.Claims(key, &c); err != nil {
		return fmt.Errorf("%w: %v", ErrPeerAuth, err)
	}
	if c.Expiry == nil || c.IssuedAt == nil {
		return fmt.Errorf("%w: no expiry", ErrPeerAuth)
	}
	exp := jwt.Expected{AnyAudience: jwt.Audience{peerAudPrefix + a.node}, Time: a.cfg.Now()}
	if err := c.ValidateWithLeeway(exp, 5*time.Second); err != nil {
		return fmt.Errorf("%w: %v", ErrPeerAuth, err)
	}
	if c.Expiry.Time().Sub(c.IssuedAt.Time()) > peerTokenLife {
		return fmt.Errorf("%w: lives too long", ErrPeerAuth)
	}
	if c.Flow != flow {
		return fmt.Errorf("%w: issued for another flow", ErrPeerAuth)
	}
	return nil
}

// PeerHandler serves GET PeerRunsPath?flow=ID&limit=N (or &run=RUN for
// one run): this node's own runs of a flow, to another node holding a
// node token for it.
func (a *App) PeerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet {
			peerError(w, http.StatusMethodNotAllowed, "GET only")
			return
		}
		flow, run := r.URL.Query().Get("flow"), r.URL.Query().Get("run")
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if run != "" {
			limit = maxRuns
		}
		auth := r.Header.Get("Authorization")
		if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
			peerError(w, http.StatusUnauthorized, "a node token is required")
			return
		}
		if err := a.checkPeerToken(r.Context(), strings.TrimSpace(auth[7:]), flow); err != nil {
			if errors.Is(err, ErrPeerAuth) {
				peerError(w, http.StatusUnauthorized, "a valid node token is required")
			} else {
				a.log.Error("peer runs: node key", "err", err)
				peerError(w, http.StatusServiceUnavailable, "the node key cannot be read")
			}
			return
		}
		runs, err := a.Runs(r.Context(), flow, limit)
		switch {
		case errors.Is(err, store.ErrNotFound):
			peerError(w, http.StatusNotFound, "no such flow")
			return
		case err != nil:
			a.log.Error("peer runs", "flow", flow, "err", err)
			peerError(w, http.StatusInternalServerError, "the runs cannot be read")
			return
		}
		enc := make([]json.RawMessage, 0, len(runs))
		for _, t := range runs {
			if run != "" && t.ID != run {
				continue
			}
			b, err := engine.EncodeTrace(t)
			if err != nil {
				continue
			}
			enc = append(enc, b)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(peerRuns{Node: a.node, Runs: enc})
	})
}

func peerError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

type peerRuns struct {
	Node string            `json:"node"`
	Runs []json.RawMessage `json:"runs"`
}

// NodeTrace is a run with the node that ran it.
type NodeTrace struct {
	Node  string
	Trace *engine.Trace
}

// NodeRuns says whether a node's runs are in a merged view.
type NodeRuns struct {
	Node string `json:"node"`
	OK   bool   `json:"ok"`
	// Error says why its runs are missing (unreachable, refused).
	Error string `json:"error,omitempty"`
}

// RunsView is a flow's recent runs across the cluster.
type RunsView struct {
	Runs  []NodeTrace
	Nodes []NodeRuns // every live node, sorted by id
	// Note says why only this node's runs are listed (the node registry
	// could not be read).
	Note string
}

// ClusterRuns returns a flow's recent runs from every live node, newest
// first, at most limit (Runs' rules), each with its node. A node that
// cannot be asked or does not answer in time is listed in Nodes with the
// reason; the view still answers with the others.
func (a *App) ClusterRuns(ctx context.Context, id string, limit int) (RunsView, error) {
	return a.clusterRuns(ctx, id, limit, "")
}

// ClusterRun finds one run of a flow on whichever live node has it
// (ErrNotFound when none does); the view's Nodes say which nodes could
// not be asked.
func (a *App) ClusterRun(ctx context.Context, id, run string) (NodeTrace, []NodeRuns, error) {
	view, err := a.clusterRuns(ctx, id, maxRuns, run)
	if err != nil {
		return NodeTrace{}, nil, err
	}
	if len(view.Runs) == 0 {
		return NodeTrace{}, view.Nodes, fmt.Errorf("run %q of flow %q: %w", run, id, store.ErrNotFound)
	}
	return view.Runs[0], view.Nodes, nil
}

// clusterRuns is ClusterRuns; a non-empty run keeps that run alone.
func (a *App) clusterRuns(ctx context.Context, id string, limit int, run string) (RunsView, error) {
	local, err := a.Runs(ctx, id, limit)
	if err != nil {
		return RunsView{}, err
	}
	if limit <= 0 || limit > maxRuns {
		limit = defaultRuns
	}
	view := RunsView{Runs: make([]NodeTrace, 0, len(local))}
	for _, t := range local {
		if run == "" || t.ID == run {
			view.Runs = append(view.Runs, NodeTrace{Node: a.node, Trace: t})
		}
	}
	view.Nodes = []NodeRuns{{Node: a.node, OK: true}}
	if !a.following() {
		return view, nil
	}
	nodes, err := a.st.Nodes(ctx)
	if err != nil {
		view.Note = fmt.Sprintf("only this node's runs: the node registry cannot be read: %v", err)
		return view, nil
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, peerFanout)
	)
	for _, n := range nodes {
		if n.ID == a.node {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			runs, err := a.fetchPeerRuns(ctx, n, id, limit, run)
			mu.Lock()
			defer mu.Unlock()
			st := NodeRuns{Node: n.ID, OK: err == nil}
			if err != nil {
				st.Error = err.Error()
			}
			view.Nodes = append(view.Nodes, st)
			for _, t := range runs {
				view.Runs = append(view.Runs, NodeTrace{Node: n.ID, Trace: t})
			}
		})
	}
	wg.Wait()
	slices.SortFunc(view.Nodes, func(x, y NodeRuns) int { return strings.Compare(x.Node, y.Node) })
	slices.SortFunc(view.Runs, func(x, y NodeTrace) int {
		if c := y.Trace.Started.Compare(x.Trace.Started); c != 0 {
			return c
		}
		return strings.Compare(y.Trace.ID, x.Trace.ID)
	})
	if len(view.Runs) > limit {
		view.Runs = view.Runs[:limit]
	}
	return view, nil
}

// fetchPeerRuns asks node n for its runs of flow.
func (a *App) fetchPeerRuns(ctx context.Context, n store.NodeInfo, flow string, limit int, run string) ([]*engine.Trace, error) {
	if n.Addr == "" {
		return nil, errors.New("the node publishes no address")
	}
	base, err := url.Parse(n.Addr)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("the node's address %q is not an http(s) URL", n.Addr)
	}
	tok, err := a.peerToken(ctx, n.ID, flow)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	u := base.JoinPath(PeerRunsPath)
	q := url.Values{"flow": {flow}, "limit": {strconv.Itoa(limit)}}
	if run != "" {
		q.Set("run", run)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := a.peerClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	if len(body) > maxPeerAnswer {
		return nil, fmt.Errorf("its answer is larger than %d bytes", maxPeerAnswer)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil // the flow is new to it, or deleted meanwhile: no runs
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("answered %s: %s", resp.Status, e.Error)
	}
	var pr peerRuns
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&pr); err != nil {
		return nil, fmt.Errorf("its answer does not decode: %w", err)
	}
	if pr.Node != n.ID {
		return nil, fmt.Errorf("answered as node %q (another node at its address?)", pr.Node)
	}
	out := make([]*engine.Trace, 0, len(pr.Runs))
	for _, raw := range pr.Runs {
		t, err := engine.DecodeTrace(raw)
		if err != nil || t.Flow != flow || (run != "" && t.ID != run) {
			continue
		}
		out = append(out, t)
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (a *App) peerClient() *http.Client {
	a.peers.mu.Lock()
	defer a.peers.mu.Unlock()
	if a.peers.client == nil {
		a.peers.client = a.cfg.PeerClient
		if a.peers.client == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.Proxy = nil // nodes reach each other directly
			a.peers.client = &http.Client{Transport: tr, Timeout: peerTimeout,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		}
	}
	return a.peers.client
}
