package store

import "context"

// pendingEntry is a window entry whose seq the commit will tell.
type pendingEntry struct {
	recentEntry
	ref eventRef
}

// newEvents returns the events of txns to journal, in order: those whose ID neither came
// earlier in the call nor is in the window r (checked through q), with the window entries
// they will make.
func newEvents(ctx context.Context, q querier, r *recentIDs, txns []TxnCommit) ([]*InboxEvent, []pendingEntry, error) {
	var total int
	for _, t := range txns {
		total += len(t.Events)
	}
	evs := make([]*InboxEvent, 0, total)
	added := make([]pendingEntry, 0, total)
	inCall := make(map[string]struct{}, total)
	for i := range txns {
		for k := range txns[i].Events {
			e := &txns[i].Events[k]
			if _, dup := inCall[e.EventID]; dup {
				continue
			}
			inCall[e.EventID] = struct{}{}
			h := r.hash(e.EventID)
			dup, err := r.seen(ctx, q, h, e.EventID)
			if err != nil {
				return nil, nil, err
			}
			if dup {
				continue
			}
			evs = append(evs, e)
			added = append(added, pendingEntry{recentEntry{hash: h}, eventRef{i, k}})
		}
	}
	return evs, added, nil
}

// assignSeqs gives the new events consecutive seqs from first, counts them in their
// transactions and completes the window entries.
func assignSeqs(txns []TxnCommit, added []pendingEntry, first int64) {
	for i := range added {
		ref := added[i].ref
		txns[ref.txn].Events[ref.ev].Seq = first + int64(i)
		txns[ref.txn].Inserted++
		added[i].seq = first + int64(i)
	}
}
