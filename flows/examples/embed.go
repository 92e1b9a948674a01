// Package examples carries flowd's prebuilt flows into the binary. They are
// installed and deployed on the first start of an empty data folder, and
// the editor offers them as templates.
package examples

import "embed"

// FS holds the prebuilt flow documents (*.json, canonical form).
//
//go:embed *.json
var FS embed.FS
