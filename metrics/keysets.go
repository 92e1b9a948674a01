package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowd/flowd/blocks/jose"
)

// keysetCollector reads the keysets at scrape time: keys per state,
// tokens each published key verified (in this process), the seconds until
// each retired key's deadline and until each keyset's next scheduled
// rotation. The series are exactly the store's keys and keysets, so they
// stay bounded and vanish with the key.
type keysetCollector struct {
	src          Sources
	keys         *prometheus.Desc
	verified     *prometheus.Desc
	retire       *prometheus.Desc
	nextRotation *prometheus.Desc
	errs         prometheus.Counter
}

func newKeysetCollector(src Sources) *keysetCollector {
	if src.Now == nil {
		src.Now = time.Now
	}
	return &keysetCollector{
		src: src,
		keys: prometheus.NewDesc(NameKeys, "Keys per keyset and state (next, active, retired, revoked).",
			[]string{"keyset", "state"}, nil),
		verified: prometheus.NewDesc(NameKeyVerifications,
			"Tokens each published key of a keyset verified since this process started (jose.validate, jose.decrypt nested).",
			[]string{"keyset", "kid"}, nil),
		retire: prometheus.NewDesc(NameKeyRetireSeconds,
			"Seconds until each retired key's deadline (negative: overdue, waiting for the next rotation to delete it).",
			[]string{"keyset", "kid"}, nil),
		nextRotation: prometheus.NewDesc(NameNextRotation,
			"Seconds until the next scheduled rotation of a keyset (keysets a deployed, unpaused schedule rotates).",
			[]string{"keyset"}, nil),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Name: NameScrapeErrors,
			Help: "Scrapes whose keyset or schedule reading failed (the affected series are left out)."}),
	}
}

func (c *keysetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.keys
	ch <- c.verified
	ch <- c.retire
	ch <- c.nextRotation
	c.errs.Describe(ch)
}

func (c *keysetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultCollectTimeout)
	defer cancel()
	now := c.src.Now()
	if ks := c.src.Keysets; ks != nil {
		if err := c.collectKeysets(ctx, ks, now, ch); err != nil {
			c.errs.Inc()
		}
	}
	if c.src.NextRotations != nil {
		next, err := c.src.NextRotations(ctx)
		if err != nil {
			c.errs.Inc()
		}
		for name, at := range next {
			ch <- prometheus.MustNewConstMetric(c.nextRotation, prometheus.GaugeValue, at.Sub(now).Seconds(), name)
		}
	}
	c.errs.Collect(ch)
}

var keyStates = []string{string(jose.StateNext), string(jose.StateActive), string(jose.StateRetired), "revoked"}

func (c *keysetCollector) collectKeysets(ctx context.Context, ks *jose.Keysets, now time.Time, ch chan<- prometheus.Metric) error {
	names, err := ks.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		info, err := ks.Get(ctx, name)
		if errors.Is(err, jose.ErrNoKeyset) {
			continue // deleted since the listing
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		counts := map[string]int{}
		for _, k := range info.Keys {
			state := string(k.State)
			if k.Revoked {
				state = "revoked"
			}
			counts[state]++
			if k.State == jose.StateRetired && !k.Revoked && !k.RetireAt.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.retire, prometheus.GaugeValue, k.RetireAt.Sub(now).Seconds(), name, k.Kid)
			}
		}
		for _, s := range keyStates {
			ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(counts[s]), name, s)
		}
		usage, err := ks.Usage(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, u := range usage {
			ch <- prometheus.MustNewConstMetric(c.verified, prometheus.CounterValue, float64(u.Verified), name, u.Kid)
		}
	}
	return errors.Join(errs...)
}
