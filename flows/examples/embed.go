// Package examples carries flowd's prebuilt flows into the binary. They are
// installed and deployed on the first start of an empty data folder, later
// starts upgrade the ones still exactly as an earlier release shipped them
// (app/examples.go), and the editor offers them as templates. A release that
// changes one regenerates app/examples_shipped.go (go generate ./app).
package examples

import "embed"

// FS holds the prebuilt flow documents (*.json, canonical form).
//
//go:embed *.json
var FS embed.FS
