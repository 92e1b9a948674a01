// Command writeflows writes bench/benchflows' flows (derived from the
// prebuilt ones compiled into it) into a folder, for bench/run.sh and
// bench/rss.sh to import.
//
//	go run ./bench/writeflows DIR
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/flowd/flowd/bench/benchflows"
	"github.com/flowd/flowd/flows/examples"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: writeflows DIR")
		os.Exit(2)
	}
	docs, err := benchflows.Docs(examples.FS)
	if err == nil {
		err = os.MkdirAll(os.Args[1], 0o755)
	}
	for id, doc := range docs {
		if err != nil {
			break
		}
		err = os.WriteFile(filepath.Join(os.Args[1], id+".json"), doc, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "writeflows:", err)
		os.Exit(1)
	}
}
