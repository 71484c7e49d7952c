package haproxy

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// Files inside Server.Dir.
const (
	configFile = "haproxy.cfg"
	logFile    = "haproxy.log" // stdout and stderr: the request log and HAProxy's alerts
)

// configTemplate is the haproxy.cfg that Start writes and runs, shown in
// docs/high-availability.md as the recommended front. Its input is a validated Options.
var configTemplate = template.Must(template.New(configFile).Parse(`# HAProxy 2.6 in front of a Switchboard high-availability group. The homeserver's
# registration (url:) points at the frontend; every appservice transaction goes to the one
# Switchboard process whose GET /health/ready answers 200, the leader. Standbys answer 503
# there and are out of the backend.

global
    # Runs in the foreground (haproxy -db), without chroot or user switch; logs to stdout.
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    # A transaction may take a while.
    timeout client 60s
    timeout server 60s
    # /health/ready pings the database and the homeserver.
    timeout check 1s
    # A transaction that cannot be delivered, or that a standby answered 503 before its
    # check failed, is sent again to another server. That is safe: Switchboard drops the
    # events of a replayed transaction by their IDs. HAProxy can resend after a response
    # only a request it holds whole: up to about 15 KiB, headers included (tune.bufsize
    # less tune.maxrewrite), received before it is sent on (http-buffer-request). The
    # homeserver gets the 503 of a larger one and sends it again later.
    retries 3
    option redispatch
    retry-on conn-failure empty-response 503
    option http-buffer-request

frontend appservice
    bind {{.Listen}}
    default_backend switchboard

backend switchboard
    option httpchk GET /health/ready
    http-check expect status 200
    # A check every 250 ms, out after 2 failed, back after 1 passed: quick takeovers in
    # tests. In production: inter 1s fall 2 rise 2.
    default-server inter 250ms fall 2 rise 1
{{- range .Backends}}
    server {{.Name}} {{.Addr}} check port {{.CheckPort}}
{{- end}}
`))

// serverName is what HAProxy accepts as a server's name.
var serverName = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// validate returns every problem of opts, each with its field, or nil.
func (opts Options) validate() error {
	var errs []error
	if err := checkAddr(opts.Listen); err != nil {
		errs = append(errs, fmt.Errorf("haproxy: Options.Listen: %w", err))
	}
	if len(opts.Backends) == 0 {
		errs = append(errs, errors.New("haproxy: Options.Backends: required, at least one"))
	}
	seen := map[string]bool{}
	for i, b := range opts.Backends {
		field := fmt.Sprintf("haproxy: Options.Backends[%d]", i)
		switch {
		case !serverName.MatchString(b.Name):
			errs = append(errs, fmt.Errorf("%s.Name: %q is not letters, digits and _.:-", field, b.Name))
		case seen[b.Name]:
			errs = append(errs, fmt.Errorf("%s.Name: %q is used twice", field, b.Name))
		}
		seen[b.Name] = true
		if err := checkAddr(b.Addr); err != nil {
			errs = append(errs, fmt.Errorf("%s.Addr: %w", field, err))
		}
		if b.CheckPort < 1 || b.CheckPort > 65535 {
			errs = append(errs, fmt.Errorf("%s.CheckPort: %d is not a port (1 to 65535)", field, b.CheckPort))
		}
	}
	return errors.Join(errs...)
}

// checkAddr checks that addr is HOST:PORT with a port from 1 to 65535.
func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("required, HOST:PORT")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT: %w", addr, err)
	}
	if host == "" || strings.ContainsAny(host, " \t\r\n#\"'\\") {
		return fmt.Errorf("%q has no usable host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has no port from 1 to 65535", addr)
	}
	return nil
}

// config returns the haproxy.cfg for opts, which validate accepted.
func (opts Options) config() (string, error) {
	var b strings.Builder
	if err := configTemplate.Execute(&b, opts); err != nil {
		return "", fmt.Errorf("haproxy: failed to write config: %w", err)
	}
	return b.String(), nil
}
