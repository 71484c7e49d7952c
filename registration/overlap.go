package registration

import (
	"regexp/syntax"
	"slices"
	"unicode"
)

// Overlap reports whether some string matches both Go regular expressions a and b as a whole
// (as if each were written ^(?:…)$). It decides the emptiness of the intersection of the two
// regular languages exactly, except for the empty-width assertions \b, \B and the multi-line
// ^ and $, which are assumed to hold: for those the answer may be a false "true", never a
// false "false".
//
// It returns [ErrTooComplex] when the expressions are too large to compare in reasonable time,
// and the parser's error when one of them is not valid.
func Overlap(a, b string) (bool, error) {
	_, ok, err := overlapWitness(a, b)
	return ok, err
}

// maxWork bounds the product search: pairs of states times successors looked at.
const maxWork = 1 << 21

// overlapWitness is Overlap that also returns a string both expressions may match.
func overlapWitness(a, b string) (string, bool, error) {
	na, err := newNFA(a)
	if err != nil {
		return "", false, err
	}
	nb, err := newNFA(b)
	if err != nil {
		return "", false, err
	}
	return intersect(na, nb)
}

// nfa is a compiled regular expression with the rune set of each rune instruction and the
// memoized epsilon closures of its program counters.
type nfa struct {
	prog  *syntax.Prog
	runes [][]rune // runes[pc]: sorted lo,hi pairs matched by instruction pc
	// closures[atStart][pc] is the closure of pc, computed lazily.
	closures [2][][]uint32
	done     [2][]bool
}

func newNFA(expr string) (*nfa, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, err
	}
	n := &nfa{prog: prog, runes: make([][]rune, len(prog.Inst))}
	for i := range 2 {
		n.closures[i] = make([][]uint32, len(prog.Inst))
		n.done[i] = make([]bool, len(prog.Inst))
	}
	for pc := range prog.Inst {
		n.runes[pc] = runeRanges(&prog.Inst[pc])
	}
	return n, nil
}

// runeRanges is the set of runes an instruction consumes, as sorted lo,hi pairs.
func runeRanges(in *syntax.Inst) []rune {
	switch in.Op {
	case syntax.InstRune1:
		return []rune{in.Rune[0], in.Rune[0]}
	case syntax.InstRuneAny:
		return []rune{0, unicode.MaxRune}
	case syntax.InstRuneAnyNotNL:
		return []rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune}
	case syntax.InstRune:
		if len(in.Rune) == 1 {
			// A single rune comes from a literal; with FoldCase it matches its fold orbit.
			r0 := in.Rune[0]
			set := []rune{r0}
			if syntax.Flags(in.Arg)&syntax.FoldCase != 0 {
				for r := unicode.SimpleFold(r0); r != r0; r = unicode.SimpleFold(r) {
					set = append(set, r)
				}
			}
			slices.Sort(set)
			out := make([]rune, 0, 2*len(set))
			for _, r := range set {
				out = append(out, r, r)
			}
			return out
		}
		// A class: pairs, already expanded for case folding by the parser.
		pairs := make([][2]rune, 0, len(in.Rune)/2)
		for i := 0; i+1 < len(in.Rune); i += 2 {
			pairs = append(pairs, [2]rune{in.Rune[i], in.Rune[i+1]})
		}
		slices.SortFunc(pairs, func(x, y [2]rune) int { return int(x[0]) - int(y[0]) })
		out := make([]rune, 0, len(in.Rune))
		for _, p := range pairs {
			out = append(out, p[0], p[1])
		}
		return out
	}
	return nil
}

// closure is the set of rune instructions and Match instructions reachable from pc without
// consuming input. atStart says whether no input has been consumed yet (for \A and ^).
// After \z or $ only Match is kept: nothing may be consumed past the end of the text.
func (n *nfa) closure(pc uint32, atStart bool) []uint32 {
	s := 0
	if atStart {
		s = 1
	}
	if n.done[s][pc] {
		return n.closures[s][pc]
	}
	type state struct {
		pc    uint32
		ended bool
	}
	seen := map[state]bool{}
	var out []uint32
	added := map[uint32]bool{}
	stack := []state{{pc, false}}
	for len(stack) > 0 {
		st := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[st] {
			continue
		}
		seen[st] = true
		in := &n.prog.Inst[st.pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, state{in.Out, st.ended}, state{in.Arg, st.ended})
		case syntax.InstCapture, syntax.InstNop:
			stack = append(stack, state{in.Out, st.ended})
		case syntax.InstEmptyWidth:
			op := syntax.EmptyOp(in.Arg)
			if op&syntax.EmptyBeginText != 0 && !atStart {
				continue
			}
			// Other assertions than \A and \z are assumed to hold (a superset: sound).
			stack = append(stack, state{in.Out, st.ended || op&syntax.EmptyEndText != 0})
		case syntax.InstMatch:
			if !added[st.pc] {
				added[st.pc] = true
				out = append(out, st.pc)
			}
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			if !st.ended && !added[st.pc] {
				added[st.pc] = true
				out = append(out, st.pc)
			}
		case syntax.InstFail:
		}
	}
	slices.Sort(out)
	n.closures[s][pc] = out
	n.done[s][pc] = true
	return out
}

// intersect searches the product of a and b breadth first for a pair of Match instructions
// reached on the same input, and returns that input.
func intersect(a, b *nfa) (string, bool, error) {
	type node struct {
		a, b   uint32
		parent int32
		r      rune
	}
	var queue []node
	seen := map[[2]uint32]bool{}
	work := 0
	push := func(pa, pb uint32, parent int32, r rune) {
		k := [2]uint32{pa, pb}
		work++
		if !seen[k] {
			seen[k] = true
			queue = append(queue, node{pa, pb, parent, r})
		}
	}
	for _, pa := range a.closure(uint32(a.prog.Start), true) {
		for _, pb := range b.closure(uint32(b.prog.Start), true) {
			push(pa, pb, -1, 0)
		}
	}
	for i := 0; i < len(queue); i++ {
		if work > maxWork {
			return "", false, ErrTooComplex
		}
		cur := queue[i]
		ia, ib := &a.prog.Inst[cur.a], &b.prog.Inst[cur.b]
		if ia.Op == syntax.InstMatch && ib.Op == syntax.InstMatch {
			var rs []rune
			for j := int32(i); queue[j].parent >= 0; j = queue[j].parent {
				rs = append(rs, queue[j].r)
			}
			slices.Reverse(rs)
			return string(rs), true, nil
		}
		if ia.Op == syntax.InstMatch || ib.Op == syntax.InstMatch {
			continue
		}
		r, ok := commonRune(a.runes[cur.a], b.runes[cur.b])
		if !ok {
			continue
		}
		for _, pa := range a.closure(ia.Out, false) {
			for _, pb := range b.closure(ib.Out, false) {
				push(pa, pb, int32(i), r)
			}
		}
	}
	return "", false, nil
}

// witnessPreference lists the runes tried first as a witness, so that examples read well.
const witnessPreference = "abcdefghijklmnopqrstuvwxyz0123456789_-.=/+ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// commonRune returns a rune in both sorted range lists, preferring a readable one.
func commonRune(x, y []rune) (rune, bool) {
	var common []rune
	i, j := 0, 0
	for i+1 < len(x) && j+1 < len(y) {
		lo, hi := max(x[i], y[j]), min(x[i+1], y[j+1])
		if lo <= hi {
			common = append(common, lo, hi)
		}
		if x[i+1] < y[j+1] {
			i += 2
		} else {
			j += 2
		}
	}
	if len(common) == 0 {
		return 0, false
	}
	for _, r := range witnessPreference {
		if inRanges(common, r) {
			return r, true
		}
	}
	for k := 0; k+1 < len(common); k += 2 {
		if common[k+1] > ' ' {
			return max(common[k], '!'), true
		}
	}
	return common[0], true
}

func inRanges(ranges []rune, r rune) bool {
	for k := 0; k+1 < len(ranges); k += 2 {
		if ranges[k] <= r && r <= ranges[k+1] {
			return true
		}
	}
	return false
}
