package peerproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Program is an executable a test peer runs: found on PATH or else in Dir, where its
// Debian package installs it (a directory that is not always on PATH, such as /usr/sbin).
//
//	var kamailio = peerproc.Program{Peer: "kamailio", Name: "kamailio", Dir: "/usr/sbin", Debian: "kamailio"}
type Program struct {
	Peer   string // the test peer's name, which prefixes errors, e.g. "linphone"
	Name   string // the executable's file name, e.g. "linphonec"
	Dir    string // where the Debian package installs it, e.g. "/usr/bin"
	Debian string // the Debian package(s) to install for it, space-separated
}

// Path returns the program's path, or an error that says which Debian package to install
// and wraps exec.ErrNotFound.
func (p Program) Path() (string, error) {
	if path, err := exec.LookPath(p.Name); err == nil {
		return path, nil
	}
	path := filepath.Join(p.Dir, p.Name)
	if _, err := os.Stat(path); err != nil {
		packages := "package"
		if strings.Contains(p.Debian, " ") {
			packages = "packages"
		}
		return "", fmt.Errorf("%s: %s not found (install the Debian %s %s): %w", p.Peer, p.Name, packages, p.Debian, exec.ErrNotFound)
	}
	return path, nil
}

// Available reports why the program cannot run here (processes are not Supported, or it
// is not installed), or nil if it can.
func (p Program) Available() error {
	if err := Supported(); err != nil {
		return err
	}
	_, err := p.Path()
	return err
}
