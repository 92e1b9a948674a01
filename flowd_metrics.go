package flowd

import (
	"context"
	"time"

	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/metrics"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/ui"
)

// observability holds the metrics of one Flowd (nil m: Options.Metrics was
// not set) and hands each part its hook. Every method is nil-safe, so New
// wires the parts the same way with or without metrics.
type observability struct {
	m   *metrics.Metrics
	srv *ui.Server // set once built; read by the scrape-time collector
}

func newObservability(opts Options, keysets *jose.Keysets) (*observability, error) {
	o := &observability{}
	if opts.Metrics == nil {
		return o, nil
	}
	m, err := metrics.New(opts.Metrics, metrics.Sources{Keysets: keysets, NextRotations: o.nextRotations})
	if err != nil {
		return nil, err
	}
	o.m = m
	return o, nil
}

func (o *observability) nextRotations(ctx context.Context) (map[string]time.Time, error) {
	if o.srv == nil {
		return nil, nil
	}
	return o.srv.NextRotations(ctx)
}

func (o *observability) engine() engine.Observer {
	if o.m == nil {
		return nil
	}
	return o.m
}

func (o *observability) ui() ui.Observer {
	if o.m == nil {
		return nil
	}
	return o.m
}

func (o *observability) unmatched() httpblock.RequestObserver {
	if o.m == nil {
		return nil
	}
	return o.m.Unmatched()
}

func (o *observability) cronFire() func(flow, node, kind, outcome string) {
	if o.m == nil {
		return nil
	}
	return o.m.CronFire
}

func (o *observability) hashBusy() func() {
	if o.m == nil {
		return nil
	}
	return o.m.HashPoolBusy
}

// clientThrottle gives the client registry a throttle like its default
// one that also counts its trips.
func (o *observability) clientThrottle(c *oauth.Clients) {
	if o.m == nil {
		return
	}
	c.SetThrottle(passhash.NewThrottle(passhash.ThrottleOptions{Free: oauth.ThrottleFree, Base: oauth.ThrottleBase,
		Max: oauth.ThrottleMax, Size: oauth.ThrottleSize, OnRefuse: o.m.ThrottleTrip("oauth_client")}))
}
