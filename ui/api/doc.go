// Package api is flowd's admin JSON API, served under /admin/api behind a
// bearer token (or a browser session, through the ui package's bridge).
// Errors become status codes here, once, at the edge, through the one
// error table in errors.go that the editor and the HTML pages use too:
//
//	{"error": {"code": "invalid_flow", "message": "...", "node": "rotate", "field": "retire_after"}}
//
// A 500 carries an error id that is also logged; its cause never leaves
// the server. FromResponse reads such an answer back into the sentinel
// error its code stands for (the CLI's remote client).
//
// # Stability
//
// The HTTP API (paths, JSON bodies, error codes) is what clients rely on;
// this Go package that serves it is flowd's own wiring, not a supported
// API: Handler, its Register functions and helpers change with the admin
// side without notice. Embedders mount it through flowd.Flowd.AdminHandler.
package api
