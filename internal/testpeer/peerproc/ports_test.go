package peerproc

import (
	"errors"
	"fmt"
	"testing"
)

func TestStartOnFreePorts(t *testing.T) {
	inUse := fmt.Errorf("peer: %w", ErrAddrInUse)
	other := errors.New("config broken")
	tests := []struct {
		name      string
		fixed     bool
		errs      []error // what the attempts return, in order
		wantCalls int
		wantErr   error
	}{
		{name: "first try", errs: []error{nil}, wantCalls: 1},
		{name: "port taken once", errs: []error{inUse, nil}, wantCalls: 2},
		{name: "port taken three times", errs: []error{inUse, inUse, inUse}, wantCalls: 3, wantErr: ErrAddrInUse},
		{name: "other error", errs: []error{other}, wantCalls: 1, wantErr: other},
		{name: "fixed port taken", fixed: true, errs: []error{inUse}, wantCalls: 1, wantErr: ErrAddrInUse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := StartOnFreePorts(tc.fixed, func() error {
				calls++
				return tc.errs[calls-1]
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("%d calls, error %v; want %d calls, error %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}
