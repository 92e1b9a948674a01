package ui

import (
	"context"
	"strconv"
	"time"
)

// Timeline geometry: a fixed viewBox width; rows of rowH pixels under a
// header band for the tick labels.
const (
	tlWidth  = 1000.0
	tlLabelW = 140.0
	tlTop    = 16
	tlRowH   = 24
)

func tlf(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func tlHeightF(t Timeline) float64 { return float64(tlTop + tlRowH*len(t.Rows) + 14) }

func tlHeight(t Timeline) string { return tlf(tlHeightF(t)) }

func tlViewBox(t Timeline) string { return "0 0 " + tlf(tlWidth) + " " + tlHeight(t) }

func tlPos(t Timeline, at time.Time) float64 {
	span := t.End.Sub(t.Start)
	if span <= 0 {
		return tlLabelW
	}
	f := float64(at.Sub(t.Start)) / float64(span)
	f = max(0, min(1, f))
	return tlLabelW + f*(tlWidth-tlLabelW-8)
}

func tlX(t Timeline, at time.Time) string { return tlf(tlPos(t, at)) }

func tlW(t Timeline, from, to time.Time) string {
	return tlf(max(2, tlPos(t, to)-tlPos(t, from)))
}

// markDy puts nbf's label under the bar: it often equals iat.
func markDy(name string) string {
	if name == "nbf" {
		return "24"
	}
	return "-2"
}

func tlRowY(i int) string      { return strconv.Itoa(tlTop + i*tlRowH + 4) }
func tlRowBottom(i int) string { return strconv.Itoa(tlTop + i*tlRowH + 18) }
func tlRowText(i int) string   { return strconv.Itoa(tlTop + i*tlRowH + 15) }

// ticks returns about n evenly spaced instants over [start, end], rounded
// to the hour.
func ticks(start, end time.Time, n int) []time.Time {
	span := end.Sub(start)
	if span <= 0 || n < 1 {
		return nil
	}
	step := (span / time.Duration(n)).Round(time.Hour)
	if step < time.Hour {
		step = span / time.Duration(n)
	}
	var out []time.Time
	for t := start.Truncate(step).Add(step); t.Before(end); t = t.Add(step) {
		out = append(out, t)
	}
	return out
}

func shortKid(kid string) string {
	if len(kid) > 12 {
		return kid[:12] + "…"
	}
	return kid
}

func csrfFromCtx(ctx context.Context) string {
	if s, ok := ctx.Value(sessionKey{}).(*session); ok {
		return s.CSRF
	}
	return ""
}
