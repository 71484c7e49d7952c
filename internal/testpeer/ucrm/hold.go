package ucrm

import "net/http"

// Hold catches the next request to one endpoint before the UCRM acts on it, so that a
// test can kill the client at a known point (after it sent a message, before it learned
// the answer; after it stored what it received, before its commit was applied) and then
// let the request take effect or not.
type Hold struct {
	arrived chan struct{}
	release chan bool
}

// Hold catches the next request to path (below the base path, e.g. "/messaging/commit").
func (s *Server) Hold(path string) *Hold {
	h := &Hold{arrived: make(chan struct{}), release: make(chan bool, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds == nil {
		s.holds = map[string]*Hold{}
	}
	s.holds[path] = h
	return h
}

// Arrived is closed when the request is held.
func (h *Hold) Arrived() <-chan struct{} { return h.arrived }

// Release lets the held request go on: applied (the UCRM acts on it and answers, even if
// the client is gone) or dropped (the connection is cut and nothing changes).
func (h *Hold) Release(apply bool) { h.release <- apply }

// take returns the hold of path, once.
func (s *Server) take(path string) *Hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.holds[path]
	delete(s.holds, path)
	return h
}

// held waits for the test's decision on a held request; false means drop it.
func (h *Hold) held(stop <-chan struct{}) bool {
	close(h.arrived)
	select {
	case apply := <-h.release:
		return apply
	case <-stop:
		return false
	}
}

// dropConnection ends a handler without an answer: the client sees the connection cut.
func dropConnection() { panic(http.ErrAbortHandler) }
