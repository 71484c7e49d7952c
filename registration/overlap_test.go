package registration

import (
	"errors"
	"regexp"
	"regexp/syntax"
	"testing"
)

func TestOverlap(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"distinct prefixes", `_xmpp_.*`, `_email_.*`, false},
		{"prefix of a prefix", `_x.*`, `_xmpp_.*`, true},
		{"literal and dot", `bot`, `b.t`, true},
		{"disjoint classes", `[a-c]+`, `[d-f]+`, false},
		{"touching classes", `[a-d]+`, `[d-f]+`, true},
		{"case folding", `(?i)A`, `a`, true},
		{"case folding of a class", `(?i)[k]`, "\u212a", true}, // Kelvin sign folds to k
		{"case sensitive", `A`, `a`, false},
		{"identical", `abc`, `abc`, true},
		{"whole string, not substring", `abc`, `abcd`, false},
		{"whole string, not prefix", `abc.+`, `abc`, false},
		{"empty string", `a*`, `b*`, true},
		{"alternation", `foo|bar`, `ba[rz]`, true},
		{"alternation disjoint", `foo|bar`, `baz|qux`, false},
		{"counted repetition", `a{3}`, `a{4}`, false},
		{"counted ranges", `a{2,4}`, `a{4,6}`, true},
		{"even and odd lengths", `(?:aa)*`, `a(?:aa)*`, false},
		{"any rune", `.`, `\x{10FFFF}`, true},
		{"dot excludes newline", `.`, `\n`, false},
		{"dot with s flag", `(?s).`, `\n`, true},
		{"anchors inside", `^a$`, `a`, true},
		{"end anchor in the middle", `a$b`, `ab`, false},
		{"begin anchor in the middle", `a\Ab`, `ab`, false},
		{"negated class", `[^a]`, `a`, false},
		{"namespace with domain", `^@(?:_xmpp_.+):localhost$`, `^@(?:switchboard):localhost$`, false},
		{"namespace with domain overlapping", `^@(?:.+):localhost$`, `^@(?:switchboard):localhost$`, true},
		{"escaped domain", `^@(?:a):local\.host$`, `^@(?:a):localxhost$`, false},
		{"unicode classes", `\p{Greek}+`, `[a-z]+`, false},
		{"captures and non-greedy", `(a+?)(b*)`, `ab`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Overlap(tt.a, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Overlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if back, _ := Overlap(tt.b, tt.a); back != got {
				t.Errorf("Overlap is not symmetric: %v one way, %v the other", got, back)
			}
			w, ok, _ := overlapWitness(tt.a, tt.b)
			if ok && (!fullMatch(t, tt.a, w) || !fullMatch(t, tt.b, w)) {
				t.Errorf("witness %q does not match both", w)
			}
		})
	}
}

func TestOverlapErrors(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want error
	}{
		{"invalid first", `(`, `a`, nil},
		{"invalid second", `a`, `[z-a]`, nil},
		{"too complex", `(?:[a-h]{1000})*`, `(?:[a-h]{997}|[a-h]{998}|[a-h]{999})*x`, ErrTooComplex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Overlap(tt.a, tt.b)
			if err == nil {
				t.Fatal("want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// fullMatch reports whether expr matches s as a whole, the way Overlap reads expr.
func fullMatch(t testing.TB, expr, s string) bool {
	t.Helper()
	return regexp.MustCompile(`^(?:` + expr + `)$`).MatchString(s)
}

// FuzzOverlap checks soundness: when a concrete string matches both expressions, Overlap
// must say so. It also checks the other direction where Overlap is exact (no \b, \B or
// multi-line anchors): a "true" must come with a witness both expressions match.
func FuzzOverlap(f *testing.F) {
	f.Add(`_xmpp_.*`, `_email_.*`, `_xmpp_a`)
	f.Add(`_x.*`, `_xmpp_.*`, `_xmpp_`)
	f.Add(`(?i)A`, `a`, `a`)
	f.Add(`[a-c]+`, `[d-f]+`, `abc`)
	f.Add(`(?m)^a$\n^b$`, `a\nb`, "a\nb")
	f.Add(`\bab\b`, `a.`, "ab")
	f.Add(`(?i)straße`, `STRASSE|strasse`, "strasse")
	f.Add(`.*`, `\x{FFFD}`, "\xff")
	f.Fuzz(func(t *testing.T, a, b, s string) {
		if len(a) > 200 || len(b) > 200 {
			return
		}
		if _, err := syntax.Parse(a, syntax.Perl); err != nil {
			return
		}
		if _, err := syntax.Parse(b, syntax.Perl); err != nil {
			return
		}
		reA, errA := regexp.Compile(`^(?:` + a + `)$`)
		reB, errB := regexp.Compile(`^(?:` + b + `)$`)
		if errA != nil || errB != nil {
			return
		}
		got, err := Overlap(a, b)
		if errors.Is(err, ErrTooComplex) {
			return
		}
		if err != nil {
			t.Fatalf("Overlap(%q, %q): %v", a, b, err)
		}
		if reA.MatchString(s) && reB.MatchString(s) && !got {
			t.Fatalf("Overlap(%q, %q) = false, but both match %q", a, b, s)
		}
		if got && exact(a) && exact(b) {
			w, _, _ := overlapWitness(a, b)
			if !reA.MatchString(w) || !reB.MatchString(w) {
				t.Fatalf("Overlap(%q, %q) = true, but witness %q does not match both", a, b, w)
			}
		}
	})
}

// exact reports whether expr has none of the assertions Overlap approximates.
func exact(expr string) bool {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return false
	}
	var walk func(*syntax.Regexp) bool
	walk = func(re *syntax.Regexp) bool {
		switch re.Op {
		case syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpBeginLine, syntax.OpEndLine:
			return false
		}
		for _, sub := range re.Sub {
			if !walk(sub) {
				return false
			}
		}
		return true
	}
	return walk(re)
}
