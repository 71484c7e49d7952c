package store

import (
	"slices"
	"testing"
)

func TestSeqRanges(t *testing.T) {
	tests := []struct {
		name string
		seqs []int64
		want []seqRange
	}{
		{"one", []int64{7}, []seqRange{{7, 7}}},
		{"run", []int64{3, 4, 5}, []seqRange{{3, 5}}},
		{"unsorted run", []int64{5, 3, 4}, []seqRange{{3, 5}}},
		{"gaps", []int64{1, 3, 4, 9}, []seqRange{{1, 1}, {3, 4}, {9, 9}}},
		{"repeats", []int64{2, 2, 3, 3, 2}, []seqRange{{2, 3}}},
		{"repeat at a gap", []int64{1, 1, 3, 3}, []seqRange{{1, 1}, {3, 3}}},
		{"negative and zero", []int64{-1, 0, 1, 5}, []seqRange{{-1, 1}, {5, 5}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.seqs)
			if got := seqRanges(in); !slices.Equal(got, tc.want) {
				t.Errorf("seqRanges(%v) = %v, want %v", tc.seqs, got, tc.want)
			}
			if !slices.Equal(in, tc.seqs) {
				t.Errorf("seqRanges modified its argument: %v", in)
			}
		})
	}
}

func TestDoneStmtRanges(t *testing.T) {
	tests := []struct{ n, want int }{{1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {33, 64}, {64, 64}}
	for _, tc := range tests {
		if got := doneStmtRanges(tc.n); got != tc.want {
			t.Errorf("doneStmtRanges(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// FuzzSeqRanges checks that the ranges cover exactly the given seqs, in order, apart.
func FuzzSeqRanges(f *testing.F) {
	f.Add([]byte{1, 2, 3, 7, 7, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		seqs := make([]int64, len(b))
		set := map[int64]bool{}
		for i, x := range b {
			seqs[i] = int64(x % 64)
			set[seqs[i]] = true
		}
		ranges := seqRanges(seqs)
		covered := 0
		for i, r := range ranges {
			if r.lo > r.hi || (i > 0 && r.lo <= ranges[i-1].hi+1) {
				t.Fatalf("ranges %v not sorted and apart", ranges)
			}
			for seq := r.lo; seq <= r.hi; seq++ {
				if !set[seq] {
					t.Fatalf("range %v covers %d, not given", r, seq)
				}
				covered++
			}
		}
		if covered != len(set) {
			t.Fatalf("ranges %v cover %d seqs, want %d", ranges, covered, len(set))
		}
	})
}
