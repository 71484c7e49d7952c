// Package clamdscan turns the clamd test peer into the core's virus scanner. It is a
// package of its own because it imports appservice, whose own tests use the clamd peer.
package clamdscan

import (
	"github.com/switchboard-matrix/switchboard/appservice"
	clamdc "github.com/switchboard-matrix/switchboard/internal/clamd"
	"github.com/switchboard-matrix/switchboard/internal/clamdscanner"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
)

// Scanner is s as the core's virus scanner (appservice.Scanning.Scanner), over TCP, as
// the daemon makes it from scanning.clamd.
func Scanner(s *clamd.Server) appservice.Scanner {
	c := clamdc.New("tcp", s.TCPAddr())
	c.MaxStream = s.StreamMaxLength()
	return clamdscanner.New(c)
}
