package flowtest

import (
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Failed counts the failed results.
func Failed(results []Result) int {
	n := 0
	for _, r := range results {
		if r.Failure != nil {
			n++
		}
	}
	return n
}

func testName(r Result) string { return filepath.Base(r.File) + ": " + r.Case }

// WriteTAP writes results as TAP version 13; a failure's message is a YAML
// block under its "not ok" line.
func WriteTAP(w io.Writer, results []Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "TAP version 13\n1..%d\n", len(results))
	for i, r := range results {
		name := strings.ReplaceAll(testName(r), "#", "\\#")
		if r.Failure == nil {
			fmt.Fprintf(&b, "ok %d - %s\n", i+1, name)
			continue
		}
		fmt.Fprintf(&b, "not ok %d - %s\n  ---\n  message: %q\n", i+1, name, r.Failure.Error())
		if r.Failure.Node != "" {
			fmt.Fprintf(&b, "  node: %q\n", r.Failure.Node)
		}
		fmt.Fprintf(&b, "  expected: %q\n  got: %q\n  ...\n", r.Failure.Expectation, r.Failure.Got)
	}
	fmt.Fprintf(&b, "# %d passed, %d failed\n", len(results)-Failed(results), Failed(results))
	_, err := io.WriteString(w, b.String())
	return err
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes results as JUnit XML: one testsuite per test file.
func WriteJUnit(w io.Writer, results []Result) error {
	out := junitSuites{Tests: len(results), Failures: Failed(results)}
	idx := map[string]int{}
	for _, r := range results {
		i, ok := idx[r.File]
		if !ok {
			i = len(out.Suites)
			idx[r.File] = i
			out.Suites = append(out.Suites, junitSuite{Name: filepath.Base(r.File)})
		}
		s := &out.Suites[i]
		jc := junitCase{Name: r.Case, Classname: strings.TrimSuffix(filepath.Base(r.File), Suffix),
			Time: fmt.Sprintf("%.3f", r.Elapsed.Seconds())}
		if r.Failure != nil {
			jc.Failure = &junitFailure{Message: r.Failure.Error(),
				Text: fmt.Sprintf("node: %s\nexpected: %s\ngot: %s\n", r.Failure.Node, r.Failure.Expectation, r.Failure.Got)}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, jc)
	}
	for i := range out.Suites {
		var total float64
		for _, r := range results {
			if filepath.Base(r.File) == out.Suites[i].Name {
				total += r.Elapsed.Seconds()
			}
		}
		out.Suites[i].Time = fmt.Sprintf("%.3f", total)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
