package ui

import (
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
)

// View models: plain data the templ components render. Components never
// touch the store or net/http.

// LoginView is the login page.
type LoginView struct {
	Next        string
	Error       string
	PasswordSet bool
}

// Flash is a one-line message at the top of a page.
type Flash struct {
	Kind string // "ok", "warn" or "error"
	Text string
}

// FlowRow is one line of the flows list.
type FlowRow struct {
	ID, Name, Status, Problem string
	Deployed, Latest          int
	Nodes                     int
	Triggers                  []string
	LastRun                   *RunCell
	Updated                   time.Time
}

// RunCell is a flow's last run.
type RunCell struct {
	ID, Status string
	Started    time.Time
}

// FlowsView is the flows page.
type FlowsView struct {
	CSRF  string
	Flows []FlowRow
	Flash *Flash
}

// VersionRow is one version with how it differs from the current draft.
type VersionRow struct {
	N                                      int
	Created                                time.Time
	Note                                   string
	Deployed                               bool
	SameAsDraft                            bool
	NodesAdded, NodesRemoved, NodesChanged []string
	WiresAdded, WiresRemoved               []string
}

// VersionsView is the versions page of a flow.
type VersionsView struct {
	CSRF     string
	FlowID   string
	Name     string
	Versions []VersionRow
	Flash    *Flash
}

// KeysetsView is the keysets page.
type KeysetsView struct {
	CSRF    string
	Now     time.Time
	Keysets []KeysetView
	Flash   *Flash
}

// KeysetView is one keyset.
type KeysetView struct {
	Name         string
	Keys         []KeyRow
	Timeline     Timeline
	JWKS         string
	Warnings     []string
	NextRotation time.Time // zero: no schedule rotates it
	RotatedBy    string    // "flow/node" of that schedule
	RetireAfter  string    // from the rotating flow, "" if none
}

// KeyRow is one key of a keyset.
type KeyRow struct {
	Kid, Alg, Use, State string
	Created, Activated   time.Time
	RetireAt             time.Time
	Revoked              bool
	// Verified is how many tokens the key verified in the last hour
	// (this process), LastVerified when it last did (zero: never). A
	// retired key at 0 for a while is safe to delete.
	Verified     uint64
	LastVerified time.Time
}

// Timeline is a set of horizontal bars over a time range, drawn as SVG.
type Timeline struct {
	Start, End time.Time
	Now        time.Time
	Rows       []TimelineRow
	Ticks      []time.Time
}

// TimelineRow is one bar: a label and its segments.
type TimelineRow struct {
	Label    string
	Segments []Segment
	Marks    []Mark
}

// Segment is a span in a state (CSS class seg-<State>).
type Segment struct {
	State    string
	From, To time.Time
	Title    string
}

// Mark is an instant on a row (iat, nbf, exp in the token debugger).
type Mark struct {
	Name string
	At   time.Time
}

// SchedulesView is the schedules page.
type SchedulesView struct {
	CSRF      string
	Schedules []ScheduleRow
	Preview   PreviewView
	Flash     *Flash
}

// ScheduleRow is one deployed cron trigger.
type ScheduleRow struct {
	Flow, Node, Spec, Timezone string
	Paused, CatchUp            bool
	Next                       []time.Time
	LastRun                    string
}

// PreviewView is the spec preview form and its result.
type PreviewView struct {
	Spec, Timezone string
	Next           []time.Time
	Error          string
}

// TemplatesView is the template gallery.
type TemplatesView struct {
	CSRF      string
	Templates []TemplateCard
	Flash     *Flash
}

// TemplateCard is one template: a starter or a prebuilt flow.
type TemplateCard struct {
	Name, ID, Title, Description string
	Nodes                        int
	Types                        []string
	Starter                      bool
	// SuggestedID is a free id for the copy; Paths the routes of its
	// http.in nodes, to change in the form.
	SuggestedID string
	Paths       []string
	// Warning, if set, is asked before the copy is made (a second
	// schedule rotating the same keyset).
	Warning string
}

// DebuggerView is the token debugger form and its result.
type DebuggerView struct {
	CSRF    string
	Form    DebuggerForm
	Keysets []string
	Result  *DebugResult
	FormErr string
}

// DebuggerForm is the policy typed into the debugger (never the token
// echoed back: it stays in the textarea only as the browser keeps it).
type DebuggerForm struct {
	Source, Keyset, JWKSURL             string
	Algorithms, Issuer, Audience, Types string
	AudienceOptional, RequireExp        bool
	Leeway, MaxAge, RequiredClaims      string
}

// DebugResult is what the debugger found.
type DebugResult struct {
	Kind      string // JWS, JWE
	Header    string // pretty JSON, unverified
	Claims    string
	DecodeErr string
	Valid     bool
	Reason    string
	Detail    string
	Kid       string
	KeyState  string // next, active, retired, revoked, unknown
	KeyAlg    string
	Timeline  *Timeline
}

// ClientsView is the clients page.
type ClientsView struct {
	CSRF       string
	Flash      *Flash
	Clients    []oauth.Client // views: no secret hashes
	GrantTypes []string
	// Form refills the add form after a refused add; FormOpen opens it.
	Form     oauth.Client
	FormOpen bool
	// Secret is a generated client secret, shown on this one answer.
	Secret *SecretOnce
}

// SecretOnce is a client secret shown once, right after it was made.
type SecretOnce struct {
	ClientID, Secret string
}

// EditClientView is the edit page of one client.
type EditClientView struct {
	CSRF       string
	Flash      *Flash
	Client     oauth.Client
	GrantTypes []string
}

// UsersView is the users page.
type UsersView struct {
	CSRF     string
	Flash    *Flash
	Users    []oidc.User // views: no password hashes
	Form     oidc.User
	FormOpen bool
}
