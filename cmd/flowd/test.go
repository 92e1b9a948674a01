package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/flowd/flowd/flowtest"
)

// testCmd runs flow test files (flowd test [--format text|tap|junit]
// [--out FILE] PATH...): exit 0 when every case passes, 1 when one fails.
func (c *cli) testCmd(ctx context.Context, args []string) error {
	fs := c.flags("test")
	format := fs.String("format", "text", "report format: text, tap or junit (JUnit XML)")
	match := fs.String("run", "", "run only the cases whose \"file.test.json: case name\" matches this regular expression")
	out := fs.String("out", "", "write the report to this file instead of stdout (the text summary still goes to stdout)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("name one or more folders or *.test.json files")}
	}
	switch *format {
	case "text", "tap", "junit":
	default:
		return usageError{fmt.Errorf("--format %q: want text, tap or junit", *format)}
	}
	var opts flowtest.Options
	if *match != "" {
		re, err := regexp.Compile(*match)
		if err != nil {
			return usageError{fmt.Errorf("--run: %v", err)}
		}
		opts.Match = re
	}
	suite, err := flowtest.Load(fs.Args()...)
	if err != nil {
		return err
	}
	results := suite.Run(ctx, opts)
	var w io.Writer = c.stdout
	if *out != "" {
		fh, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer fh.Close()
		w = fh
	}
	switch *format {
	case "tap":
		err = flowtest.WriteTAP(w, results)
	case "junit":
		err = flowtest.WriteJUnit(w, results)
	}
	if err != nil {
		return err
	}
	if *format == "text" || *out != "" {
		for _, r := range results {
			if r.Failure != nil {
				fmt.Fprintf(c.stdout, "FAIL %v\n", r.Failure)
			}
		}
		fmt.Fprintf(c.stdout, "%d cases, %d passed, %d failed\n", len(results), len(results)-flowtest.Failed(results), flowtest.Failed(results))
	}
	if flowtest.Failed(results) > 0 {
		return errSilent
	}
	return nil
}
