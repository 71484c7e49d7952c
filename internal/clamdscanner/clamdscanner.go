// Package clamdscanner makes a clamd client (internal/clamd) the core's virus scanner
// (appservice.Scanner). It is used by the daemon and by the end-to-end tests.
package clamdscanner

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/clamd"
)

// Scanner is clamd as an appservice.Scanner: every failure other than the size limit
// (unreachable, timed out, an error reply such as a database being reloaded) wraps
// appservice.ErrScannerUnavailable, worth trying again; the size limit wraps
// appservice.ErrScanTooLarge.
type Scanner struct{ Client *clamd.Client }

var _ appservice.Scanner = Scanner{}

// New returns the scanner of c.
func New(c *clamd.Client) Scanner { return Scanner{Client: c} }

// Scan implements appservice.Scanner.
func (s Scanner) Scan(ctx context.Context, r io.Reader) (string, error) {
	res, err := s.Client.Scan(ctx, r)
	switch {
	case errors.Is(err, clamd.ErrSizeLimit):
		return "", fmt.Errorf("%w: %w", appservice.ErrScanTooLarge, err)
	case err != nil:
		return "", fmt.Errorf("%w: %w", appservice.ErrScannerUnavailable, err)
	case res.Infected && res.Signature == "":
		return "an unnamed signature", nil // an empty signature would read as clean
	}
	return res.Signature, nil
}

// Ping implements appservice.Scanner.
func (s Scanner) Ping(ctx context.Context) error {
	if err := s.Client.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", appservice.ErrScannerUnavailable, err)
	}
	return nil
}

// Version implements appservice.Scanner.
func (s Scanner) Version(ctx context.Context) (string, error) { return s.Client.Version(ctx) }
