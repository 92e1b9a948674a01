// Package editor is flowd's visual flow editor: the editor page, its side
// panel forms (rendered on the server from block specs), its JSON and SSE
// views, and its own ES modules (static/, no build step).
//
//	GET  /admin/flows/{id}/edit            page (canvas, palette, side panel, debug panel)
//	GET  /admin/editor/static/{file}       editor.js, canvas.js, ... editor.css
//	POST /admin/editor/form                side panel form of one node (HTML fragment)
//	GET  /admin/editor/flows/{id}/runs     recent traces, values truncated, light runs flagged
//	GET  /admin/editor/flows/{id}/runs/{run}/steps/{i}  one step's full value (captured: false if none)
//	GET  /admin/editor/events?flow=ID      SSE: per node last port/error after each run
//
// The flow itself goes through the admin JSON API with the page's session
// (the ui package's bridge, CSRF header on writes): GET /admin/api/blocks
// for the palette, GET /flows/{id}/state for the draft and the deployed
// document, PUT /flows/{id} and POST /flows/{id}/deploy with the document
// and If-Match to save (and deploy), POST /validate for problems and lint
// warnings, POST /flows/{id}/run for the try-it form. The endpoints above
// are the editor's own views. Errors are the API's (api.Fail), whichever
// side answers. The mux they are mounted on is already behind login and
// CSRF checks; the page hands the CSRF token to the scripts in a data
// attribute.
//
// Saving is optimistic: the page sends the revision it loaded as If-Match;
// a stale one is a 412, the tab keeps its document (and a copy in
// sessionStorage, which the reloaded page offers to put back). Event
// streams end after Options.MaxStream and on Close, and the browser
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
