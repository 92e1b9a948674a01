package oauth

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidClientID: the hand-written check accepts exactly what the
// client id pattern does, on edge cases and on random strings over an
// alphabet of allowed, disallowed and multi-byte characters.
func TestValidClientID(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)
	cases := []string{"", "a", "A", "0", "_", "-a", ".a", ":a", "a_", "a.b:c-d", "a b", "a\n", "a\x00",
		"é", "aé", strings.Repeat("a", 128), strings.Repeat("a", 129), "a/b", "a+b", "a%", "Z9", "a\t"}
	alphabet := []rune("aZ09_.:- \n\x00é/+%~")
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		n := r.IntN(6)
		if r.IntN(50) == 0 {
			n = 125 + r.IntN(6)
		}
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, id := range cases {
		if got, want := validClientID(id), pattern.MatchString(id); got != want {
			t.Errorf("validClientID(%q) = %v, pattern says %v", id, got, want)
		}
	}
}
