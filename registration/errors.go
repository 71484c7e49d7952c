package registration

import (
	"errors"
	"fmt"
)

// Errors of this package; the typed errors below match them with errors.Is.
var (
	// ErrInvalidConfig is returned by Build for a BuildConfig missing a required field.
	ErrInvalidConfig = errors.New("registration: invalid build config")
	// ErrInvalidPattern is matched by a [*PatternError].
	ErrInvalidPattern = errors.New("registration: invalid namespace pattern")
	// ErrOverlap is matched by an [*OverlapError].
	ErrOverlap = errors.New("registration: exclusive namespaces overlap")
	// ErrTooComplex is returned by Overlap when two expressions are too large to compare.
	ErrTooComplex = errors.New("registration: regular expressions too complex to compare")
	// ErrInvalidFile is wrapped when a registration file cannot be decoded.
	ErrInvalidFile = errors.New("registration: invalid registration file")
)

// PatternError is a module's namespace pattern that is not a valid regular expression.
type PatternError struct {
	Module  string // the module's ID
	Kind    string // "users" or "aliases"
	Pattern string // the localpart pattern as the module gave it
	Err     error  // the parser's error; may be nil for an empty pattern
}

func (e *PatternError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("registration: module %q: empty %s pattern", e.Module, e.Kind)
	}
	return fmt.Sprintf("registration: module %q: invalid %s pattern %q: %v", e.Module, e.Kind, e.Pattern, e.Err)
}

// Is reports whether target is [ErrInvalidPattern].
func (e *PatternError) Is(target error) bool { return target == ErrInvalidPattern }

// Unwrap returns the parser's error.
func (e *PatternError) Unwrap() error { return e.Err }

// OverlapError says that two modules claim the same IDs exclusively.
type OverlapError struct {
	Kind     string // "users" or "aliases"
	ModuleA  string // the first module's ID ("bot" for the management bot)
	PatternA string // its localpart pattern
	ModuleB  string
	PatternB string
	// Example is an ID both patterns match; empty when none could be confirmed.
	Example string
}

func (e *OverlapError) Error() string {
	msg := fmt.Sprintf("registration: exclusive %s namespaces overlap: module %q (%q) and module %q (%q)",
		e.Kind, e.ModuleA, e.PatternA, e.ModuleB, e.PatternB)
	if e.Example != "" {
		msg += fmt.Sprintf(" both match %q", e.Example)
	}
	return msg
}

// Is reports whether target is [ErrOverlap].
func (e *OverlapError) Is(target error) bool { return target == ErrOverlap }
