package peerproc

import (
	"fmt"
	"os/exec"
	"testing"
	"time"
)

func TestTail(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"empty", "", 3, ""},
		{"fewer lines", "a\nb\n", 3, "a\nb"},
		{"more lines", "a\nb\nc\nd\n", 2, "c\nd"},
		{"no final newline", "a\nb", 1, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tail([]byte(tt.in), tt.n); got != tt.want {
				t.Errorf("Tail(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := NewTailBuffer(8)
	fmt.Fprint(b, "0123456789")
	fmt.Fprint(b, "ab")
	if got := string(b.Bytes()); got != "456789ab" {
		t.Errorf("tail buffer = %q, want %q", got, "456789ab")
	}
}

func TestTailBufferSince(t *testing.T) {
	b := NewTailBuffer(64)
	fmt.Fprint(b, "before\n")
	mark := b.Written()
	fmt.Fprint(b, "after\n")
	if got := string(b.Since(mark)); got != "after\n" {
		t.Errorf("Since(mark) = %q, want %q", got, "after\n")
	}
}

func TestStopProcess(t *testing.T) {
	p, err := Start(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("process still running after Stop")
	}
	q, err := Start(exec.Command("true"))
	if err != nil {
		t.Fatal(err)
	}
	<-q.Done()
	if err := q.Stop(time.Second); err == nil {
		t.Fatal("Stop of a process that had exited on its own reported no error")
	}
}
