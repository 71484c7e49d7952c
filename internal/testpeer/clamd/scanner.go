package clamd

import (
	"github.com/switchboard-matrix/switchboard/appservice"
	clamdc "github.com/switchboard-matrix/switchboard/internal/clamd"
	"github.com/switchboard-matrix/switchboard/internal/clamdscanner"
)

// Scanner is this clamd as the core's virus scanner (appservice.Scanning.Scanner), over
// TCP, as the daemon makes it from scanning.clamd.
func (s *Server) Scanner() appservice.Scanner {
	c := clamdc.New("tcp", s.TCPAddr())
	c.MaxStream = s.StreamMaxLength()
	return clamdscanner.New(c)
}
