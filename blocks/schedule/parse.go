package schedule

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Sentinel errors; check with errors.Is.
var (
	// ErrBadSpec: a cron spec that does not parse or never fires.
	ErrBadSpec = errors.New("bad schedule spec")
	// ErrBadTimezone: a time zone name that is not a loadable IANA zone.
	ErrBadTimezone = errors.New("bad time zone")
	// ErrNotFound: no deployed schedule.cron node has that flow and node id.
	ErrNotFound = errors.New("schedule not found")
)

// SpecError is a spec or time zone that cannot be scheduled. Field is the
// block's config field at fault: "spec" or "timezone".
type SpecError struct {
	Field string
	Msg   string
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrBadSpec) or ErrBadTimezone hold.
func (e *SpecError) Unwrap() error {
	if e.Field == fieldTimezone {
		return ErrBadTimezone
	}
	return ErrBadSpec
}

func specErr(format string, args ...any) *SpecError {
	return &SpecError{Field: fieldSpec, Msg: fmt.Sprintf(format, args...)}
}

func zoneErr(format string, args ...any) *SpecError {
	return &SpecError{Field: fieldTimezone, Msg: fmt.Sprintf(format, args...)}
}

// parser reads 5-field specs, 6-field specs with seconds first, and
// descriptors. Time zones are not taken from the spec ("TZ=..."): they
// belong in the timezone field, which is checked before anything parses.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

const (
	maxSpecLen   = 256
	minEvery     = time.Second
	maxZoneLen   = 64
	descriptorOK = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>"
)

// zonePattern admits IANA names ("Europe/Paris", "Etc/GMT+5",
// "America/Argentina/Buenos_Aires") and nothing that could walk a path.
var zonePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$`)

// compiled is a checked spec and zone, ready to schedule.
type compiled struct {
	spec  string // as written
	zone  string // the zone's name, "" resolved to the default
	loc   *time.Location
	sched cron.Schedule
}

// compile checks a zone name and a spec. The zone is checked first and
// with time.LoadLocation, before anything that could panic on a bad name.
// Both problems are reported when both fields are wrong.
func compile(spec, zone string, def *time.Location, now time.Time) (*compiled, []*SpecError) {
	var errs []*SpecError
	loc, zerr := loadZone(zone, def)
	if zerr != nil {
		errs = append(errs, zerr)
		loc = time.UTC // still check the spec, against some zone
	}
	sched, serr := parseSpec(spec, loc, now)
	if serr != nil {
		errs = append(errs, serr)
	}
	if errs != nil {
		return nil, errs
	}
	return &compiled{spec: spec, zone: loc.String(), loc: loc, sched: sched}, nil
}

// loadZone resolves a zone name; "" is the scheduler's default. "Local" is
// refused: it is whatever the server is set to, so the same flow would fire
// at different instants on different machines.
func loadZone(name string, def *time.Location) (*time.Location, *SpecError) {
	switch {
	case name == "":
		return def, nil
	case name == "Local":
		return nil, zoneErr(`"Local" depends on the server's settings; name a zone such as "UTC" or "Europe/Paris"`)
	case len(name) > maxZoneLen || !zonePattern.MatchString(name):
		return nil, zoneErr("%q is not a time zone name; use an IANA name such as \"Europe/Paris\"", clip(name))
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, zoneErr("unknown time zone %q; use an IANA name such as \"Europe/Paris\"", name)
	}
	return loc, nil
}

// parseSpec parses a spec in loc and checks that it fires at all.
func parseSpec(spec string, loc *time.Location, now time.Time) (sched cron.Schedule, serr *SpecError) {
	// robfig/cron has panicked on malformed input before ("TZ=x" without a
	// space); a spec is user input, so a panic here is a bad spec.
	defer func() {
		if p := recover(); p != nil {
			sched, serr = nil, specErr("cannot parse %q", clip(spec))
		}
	}()
	norm := strings.Join(strings.Fields(spec), " ")
	switch {
	case norm == "":
		return nil, specErr("is empty; write a cron spec such as \"0 3 * * *\" or a descriptor such as \"@daily\"")
	case len(norm) > maxSpecLen:
		return nil, specErr("is %d characters, more than %d", len(norm), maxSpecLen)
	case strings.HasPrefix(norm, "TZ=") || strings.HasPrefix(norm, "CRON_TZ="):
		return nil, specErr("put the time zone in the timezone field, not in the spec")
	case norm == "@every" || strings.HasPrefix(norm, "@every "):
		return parseEvery(strings.TrimSpace(strings.TrimPrefix(norm, "@every")))
	case strings.HasPrefix(norm, "@"):
		s, err := parser.Parse(norm)
		if err != nil {
			return nil, specErr("unknown descriptor %q; use %s", clip(norm), descriptorOK)
		}
		return inZone(s, loc, fixedDescriptor(norm), now)
	}
	fields := strings.Fields(norm)
	if len(fields) != 5 && len(fields) != 6 {
		return nil, specErr("has %d fields; want 5 (minute hour day-of-month month day-of-week), "+
			"6 with seconds first, or a descriptor such as \"@daily\"", len(fields))
	}
	if err := checkFields(fields); err != nil {
		return nil, err
	}
	s, err := parser.Parse(norm)
	if err != nil {
		return nil, specErr("%v", err)
	}
	return inZone(s, loc, fixedFields(fields), now)
}

func parseEvery(arg string) (cron.Schedule, *SpecError) {
	if arg == "" {
		return nil, specErr("@every needs a duration, such as \"@every 15m\"")
	}
	d, err := time.ParseDuration(arg)
	switch {
	case err != nil:
		return nil, specErr("@every: %q is not a duration such as \"90s\", \"15m\" or \"1h30m\"", clip(arg))
	case d < minEvery:
		return nil, specErr("@every must be at least %s, not %s", minEvery, arg)
	case d%time.Second != 0:
		// robfig/cron would silently round it down to whole seconds.
		return nil, specErr("@every must be a whole number of seconds, not %s", arg)
	}
	return cron.Every(d), nil
}

var (
	fieldNames5 = []string{"minute", "hour", "day-of-month", "month", "day-of-week"}
	fieldOpts5  = []cron.ParseOption{cron.Minute, cron.Hour, cron.Dom, cron.Month, cron.Dow}
)

// checkFields parses each field alone so that an error names its field:
// robfig/cron's own message ("end of range (61) above maximum (59): 61")
// does not say which one it is.
func checkFields(fields []string) *SpecError {
	names, opts := fieldNames5, fieldOpts5
	if len(fields) == 6 {
		names = append([]string{"second"}, names...)
		opts = append([]cron.ParseOption{cron.Second}, opts...)
	}
	for i, f := range fields {
		if _, err := cron.NewParser(opts[i]).Parse(f); err != nil {
			msg := err.Error()
			// Drop robfig's trailing ": <expr>", which repeats the field.
			if j := strings.LastIndex(msg, ": "); j >= 0 && strings.Contains(f, msg[j+2:]) {
				msg = msg[:j]
			}
			return specErr("%s field %q: %s", names[i], clip(f), msg)
		}
	}
	return nil
}

// inZone puts a parsed spec in loc and checks that it fires at all
// ("0 0 30 2 *" never does).
func inZone(s cron.Schedule, loc *time.Location, fixed bool, now time.Time) (cron.Schedule, *SpecError) {
	ss, ok := s.(*cron.SpecSchedule)
	if !ok {
		return s, nil
	}
	ss.Location = loc
	var out cron.Schedule = ss
	if fixed && loc != time.UTC {
		out = newWallSchedule(ss, loc)
	}
	if out.Next(now).IsZero() {
		return nil, specErr("never fires: no date matches it (such as 30 February)")
	}
	return out, nil
}

// fixedFields reports whether a spec names fixed hours and minutes, as
// opposed to wildcards ("*", "*/15"); Vixie cron's rule for DST changes.
func fixedFields(fields []string) bool {
	if len(fields) == 6 {
		fields = fields[1:]
	}
	return !isWild(fields[0]) && !isWild(fields[1])
}

func isWild(f string) bool { return strings.HasPrefix(f, "*") || strings.HasPrefix(f, "?") }

func fixedDescriptor(d string) bool { return d != "@hourly" }

func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// wallSchedule runs a fixed-time spec on the wall clock of a zone with
// daylight saving time, the way Vixie cron does, where robfig/cron runs it
// on elapsed time:
//
//	spring forward (02:00 -> 03:00): "30 2 * * *"  robfig: skipped that day
//	                                               here:   runs once at 03:00, when the gap ends
//	fall back (03:00 -> 02:00):      "30 2 * * *"  robfig: runs twice
//	                                               here:   runs once, at the first 02:30
//
// Wildcard specs ("*/15 * * * *", "@hourly") keep robfig's behaviour: they
// follow elapsed time, so every quarter hour still fires once.
type wallSchedule struct {
	naive *cron.SpecSchedule // the same fields on a clock without DST (UTC)
	loc   *time.Location
}

func newWallSchedule(s *cron.SpecSchedule, loc *time.Location) *wallSchedule {
	naive := *s
	naive.Location = time.UTC
	return &wallSchedule{naive: &naive, loc: loc}
}

// maxWallSteps bounds the walk over wall times that map to instants at or
// before t: at most the ticks in one repeated hour.
const maxWallSteps = 1 << 14

// Next returns the instant of the first wall time w of the spec whose
// instant is after t. A wall time's instant is when the clock first shows
// it, or when the clock jumps over it.
func (s *wallSchedule) Next(t time.Time) time.Time {
	lt := t.In(s.loc)
	w := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), time.UTC)
	for range maxWallSteps {
		w = s.naive.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		if at := s.instant(w); at.After(t) {
			return at.In(t.Location())
		}
	}
	return time.Time{}
}

// instant maps a wall time (fields read from w, a UTC time) to the first
// instant the zone's clock shows it, or the end of the gap it falls in.
func (s *wallSchedule) instant(w time.Time) time.Time {
	r := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, s.loc)
	if wall(r).Equal(w) {
		// It exists. In a repeated hour time.Date may pick either
		// occurrence: prefer the earlier one, in the zone period before r's.
		start, _ := r.ZoneBounds()
		if start.IsZero() {
			return r
		}
		_, off := start.Add(-time.Nanosecond).Zone()
		if c := time.Unix(w.Unix()-int64(off), 0).In(s.loc); c.Before(start) && wall(c).Equal(w) {
			return c
		}
		return r
	}
	// It does not exist: the clock jumped over it. time.Date normalized it
	// to one side of the gap; the gap ends where r's zone period starts, or
	// where the period before it ends.
	start, end := r.ZoneBounds()
	if wall(r).After(w) {
		if start.IsZero() {
			return r
		}
		return start
	}
	if end.IsZero() {
		return r
	}
	return end
}

// wall reads t's clock in its own zone as a UTC time.
func wall(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// nextTimes lists up to n activations after from, in UTC.
func nextTimes(s cron.Schedule, from time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	t := from
	for range n {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t.UTC())
	}
	return out
}

// tickSlack is how late after its tick a scheduled job may start and still
// be reported with that tick as scheduled_for.
const tickSlack = time.Minute

// tickAt returns the tick a job running at `at` was scheduled for: the last
// activation not after at. cron starts jobs at (or just after) their tick.
func tickAt(s cron.Schedule, at time.Time) time.Time {
	if _, every := s.(cron.ConstantDelaySchedule); every {
		return at.Truncate(time.Second) // @every ticks count from when it was added
	}
	t := s.Next(at.Add(-tickSlack))
	if t.IsZero() || t.After(at) {
		return at.Truncate(time.Second)
	}
	for {
		n := s.Next(t)
		if n.IsZero() || n.After(at) {
			return t
		}
		t = n
	}
}

// lookbacks are the windows latestTick searches, smallest first, so that
// frequent specs are found in a short window and rare ones in a long one.
var lookbacks = []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 32 * 24 * time.Hour,
	367 * 24 * time.Hour, 5 * 367 * 24 * time.Hour}

// maxScan bounds the ticks latestTick walks through.
const maxScan = 1 << 20

// latestTick returns the last activation in [first, now], given that first
// is an activation not after now: the most recent tick that was missed.
func latestTick(s cron.Schedule, first, now time.Time) time.Time {
	if e, every := s.(cron.ConstantDelaySchedule); every && e.Delay > 0 {
		return first.Add(now.Sub(first) / e.Delay * e.Delay)
	}
	for _, w := range lookbacks {
		t := first
		if from := now.Add(-w); from.After(first) {
			t = s.Next(from)
			if t.IsZero() || t.After(now) {
				continue // no tick in this window: look further back
			}
		}
		for range maxScan {
			n := s.Next(t)
			if n.IsZero() || n.After(now) {
				break
			}
			t = n
		}
		return t
	}
	return first
}
