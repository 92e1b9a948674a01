package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodeFlow: DecodeFlow never panics; what it accepts validates
// without panicking and encodes to a canonical form that decodes again and
// re-encodes identically.
func FuzzDecodeFlow(f *testing.F) {
	for _, dir := range []string{"testdata/flows", "testdata/noncanonical"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, seed := range []string{
		"", "null", "[]", "{}", `{"schema":"flowd/v1","id":"f",`,
		doc(trig) + ` {}`,
		`{"schema":"flowd/v1","ID":"f","nodes":[],"wires":[]}`,
		`{"schema":"flowd/v1","id":"f","id":"g"}`,
		doc(trig, kitchen(`"data":`+nested(70))),
		doc(trig, kitchen(`"cond":"msg.a ==\n 1 2","count":"5","wait":"5 minutes","mode":"c"`)),
		docW([]string{trig, pass}, `{"from":"t","port":"out","to":"p"},{"from":"p","port":"error","to":"t"},{"from":"ghost","port":"x","to":"p"}`),
		doc(trig, `{"id":"s","type":"test.switch","config":{"rules":[{"name":"a","expr":"true"}]}}`),
		doc(`{"id":"t","type":"test.trigger","x":1e308,"y":-0}`),
		doc(trig, kitchen(`"text":"\u2028\ud800 \\u00e9 <&>","data":{"n":1e999,"m":-0.0e-5}`)),
	} {
		f.Add([]byte(seed))
	}
	reg := testRegistry(f, newHarness())
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a bug too: crash (and so record the input) instead of
		// stalling the fuzzer, which would still report PASS.
		wd := time.AfterFunc(10*time.Second, func() { panic("FuzzDecodeFlow: one input ran for 10 s") })
		defer wd.Stop()
		fl, err := DecodeFlow(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidFlow) || FirstValidation(err) == nil {
				t.Fatalf("DecodeFlow error is not a validation error: %v", err)
			}
			return
		}
		if err := reg.Validate(fl); err != nil && (!errors.Is(err, ErrInvalidFlow) || FirstValidation(err) == nil) {
			t.Fatalf("Validate error is not a validation error: %v", err)
		}
		enc, err := EncodeFlow(fl)
		if err != nil {
			t.Fatalf("EncodeFlow of a decoded flow: %v", err)
		}
		if enc2 := reencode(t, enc); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not idempotent:\n%s\n---\n%s", enc, enc2)
		}
	})
}
