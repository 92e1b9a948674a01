// Package ui is flowd's browser admin: templ pages under /admin behind a
// password login, plus the bridge that lets those pages call the admin
// JSON API with their session.
//
//	request ─► security headers (CSP, nosniff, no-referrer) on every answer
//	  /admin/static/*          embedded CSS and ES modules (no login)
//	  /admin/login, /logout    password login, rate limited
//	  /admin/api/*             bearer token ─► API as is
//	                           no Authorization, valid session (+ CSRF header
//	                           on POST/PUT/DELETE, same origin) ─► API
//	  everything else          session required (GET: redirect to login),
//	                           CSRF (form field csrf or X-CSRF-Token) on
//	                           every state-changing request ─► mux: pages and
//	                           the editor's routes
//
// Pages are pure templ components over view models (views.go); handlers
// are thin: read the request, call app/jose/schedule, build the model.
//
// # Stability
//
// This package is flowd's own admin front end, not a supported API: its
// types, view models and wiring (Deps, Server and its accessors) change
// whenever the admin UI does, without notice. Embedders mount it through
// flowd.Flowd.AdminHandler; the supported packages are flowd, engine
// (with engine/enginetest), store (with store/storetest) and the block
// packages' Register and Provide functions.
package ui
