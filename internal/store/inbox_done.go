package store

import (
	"context"
	"database/sql"
	"math/bits"
	"slices"
)

// doneRangesPerUpdate bounds the seq ranges of one UPDATE. A batch of events handled in
// arrival order is one range or a few; statements for 1, 2, 4, … ranges are prepared and a
// chunk pads its last range up to the next of these sizes, so that at most seven
// statements are ever prepared.
const doneRangesPerUpdate = 64

// MarkEventsDone records that the events with these seqs were handled, atomically. Only
// pending events become done; unknown seqs are ignored. The seqs are sorted and compressed
// into ranges of consecutive seqs, one "seq BETWEEN lo AND hi" each. It is
// RecordInboxProgress without raising the watermark (the dispatcher uses that).
func (s *Store) MarkEventsDone(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	return s.RecordInboxProgress(ctx, 0, seqs)
}

// seqRange is the seqs lo through hi, inclusive.
type seqRange struct{ lo, hi int64 }

// seqRanges returns the distinct seqs as ranges of consecutive seqs, in increasing order.
// seqs is not modified.
func seqRanges(seqs []int64) []seqRange {
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	var out []seqRange
	for _, seq := range sorted {
		if n := len(out); n > 0 && seq <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, seq)
			continue
		}
		out = append(out, seqRange{seq, seq})
	}
	return out
}

// doneStmtRanges is the number of ranges of the statement for a chunk of n: the next power
// of two.
func doneStmtRanges(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// doneChunk is one prepared UPDATE that marks seq ranges done, with its arguments.
type doneChunk struct {
	st   *sql.Stmt
	args []any
}

// doneChunks prepares the statements that mark ranges done. Statements are prepared before
// a transaction begins (see stmtCache).
func (s *Store) doneChunks(ctx context.Context, ranges []seqRange) ([]doneChunk, error) {
	var chunks []doneChunk
	for start := 0; start < len(ranges); start += doneRangesPerUpdate {
		rs := ranges[start:min(start+doneRangesPerUpdate, len(ranges))]
		n := doneStmtRanges(len(rs))
		st, err := s.stmt(ctx, stmtKey{stmtInboxDone, n}, doneSQL(s.dialect))
		if err != nil {
			return nil, err
		}
		args := make([]any, 0, 2*n)
		for i := range n {
			r := rs[min(i, len(rs)-1)] // padding repeats the last range
			args = append(args, r.lo, r.hi)
		}
		chunks = append(chunks, doneChunk{st, args})
	}
	return chunks, nil
}
