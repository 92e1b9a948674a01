// Package editor is flowd's visual flow editor: the editor page, its side
// panel forms (rendered on the server from block specs) and its own ES
// modules (static/, no build step).
//
//	GET  /admin/flows/{id}/edit            page (canvas, palette, side panel, debug panel)
//	GET  /admin/editor/static/{file}       editor.js, canvas.js, ... editor.css
//	POST /admin/editor/form                side panel form of one node (HTML fragment)
//
// Everything else goes through the admin JSON API with the page's session
// (the ui package's bridge, CSRF header on writes): GET /admin/api/blocks
// for the palette, GET /flows/{id}/state for the draft and the deployed
// document, PUT /flows/{id} and POST /flows/{id}/deploy with the document
// and If-Match to save (and deploy), POST /validate for problems and lint
// warnings, POST /flows/{id}/run for the try-it form and "run again", and
// for the debug panel GET /flows/{id}/runs?view=summary (values cut to a
// preview, light runs flagged, every live node's runs), GET
// /flows/{id}/runs/{run}/steps/{i} (one step's full value) and GET
// /flows/{id}/events (SSE: each node's last port or error after each run).
// Errors are the API's (api.Fail), whichever side answers. The mux the
// editor's own routes are mounted on is already behind login and CSRF
// checks; the page hands the CSRF token to the scripts in a data
// attribute.
//
// Saving is optimistic: the page sends the revision it loaded as If-Match;
// a stale one is a 412, the tab keeps its document (and a copy in
// sessionStorage, which the reloaded page offers to put back). Event
// streams end after a while and on api.Handler.Close, and the browser
// reconnects, so a graceful shutdown never waits on an open tab.
//
// Scripts (static/): editor.js boots the page; model.js holds the document,
// undo/redo and the wiring rules; canvas.js draws the SVG and handles
// pointer gestures; panel.js the server-rendered side panel; debug.js the
// runs, live badges and the try-it form; api.js fetch with the CSRF header.
//
// # Stability
//
// This package is flowd's own admin front end, not a supported API: its
// Go types, routes under /admin/editor and scripts change with the editor
// without notice. Embedders mount it through flowd.Flowd.AdminHandler.
package editor
