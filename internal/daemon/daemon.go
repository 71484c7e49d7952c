// Package daemon wires a Switchboard process together: flags, config, registration, store,
// the appservice core and the explicit list of modules, signals and graceful shutdown.
// cmd/switchboard and the test binary are thin callers of Main.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/registration"
)

// Deps is what a module constructor may use. Constructors do no I/O: Store may be nil when
// the process only generates the registration.
type Deps struct {
	Config *config.Config
	Store  *store.Store // may be nil
}

// ModuleSpec is one module the binary can host, enabled by its section under modules:.
type ModuleSpec struct {
	ID  string
	New func(section config.ModuleConfig, deps Deps) (appservice.Module, error)
}

// Main runs the switchboard command line with args (without the program name) and returns
// the exit code.
func Main(version string, specs []ModuleSpec, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "config.yaml", "path to the config file")
	regPath := fs.String("r", "registration.yaml", "path to the registration file")
	generate := fs.Bool("g", false, "generate the registration file (mode 0600) and exit")
	example := fs.Bool("e", false, "print the commented example config and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *example:
		_, _ = stdout.Write(config.Example)
		return 0
	case *showVersion:
		fmt.Fprintln(stdout, "switchboard", version)
		return 0
	}
	cfg, err := config.LoadChecked(*cfgPath, checkModule(specs))
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(stderr, "switchboard: there is no config file %s. Create one from the commented example with\n"+
			"    switchboard -e > %s\nset homeserver.address and homeserver.domain in it, and start again (-c names another file).\n",
			*cfgPath, *cfgPath)
		return 1
	case errors.Is(err, config.ErrInvalid):
		fmt.Fprintf(stderr, "switchboard: invalid config %s:\n%v\n", *cfgPath, err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "switchboard: %v\n", err)
		return 1
	}
	if *generate {
		if err := generateRegistration(cfg, specs, *regPath); err != nil {
			fmt.Fprintf(stderr, "switchboard: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "Wrote %s (mode 0600). Add it to the homeserver's app service config files and restart the homeserver.\n", *regPath)
		return 0
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return serve(ctx, cfg, specs, *regPath, version, stderr)
}

// serve runs Switchboard until ctx ends and returns the exit code.
func serve(ctx context.Context, cfg *config.Config, specs []ModuleSpec, regPath, version string, stderr io.Writer) int {
	log := newLogger(cfg.Logging, stderr)
	ctx = log.WithContext(ctx)
	if err := run(ctx, cfg, specs, regPath, version); err != nil {
		log.Error().Err(err).Msg("Switchboard stopped with an error")
		return 1
	}
	return 0
}

func newLogger(cfg config.LoggingConfig, w io.Writer) zerolog.Logger {
	if cfg.Format == "pretty" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.DateTime, NoColor: !colourful(w)}
	}
	return zerolog.New(w).Level(cfg.ZerologLevel()).With().Timestamp().Logger()
}

// colourful reports whether the pretty log format may colour its output: only on a
// terminal (a character device; the journal, a pipe or a file get no escape codes), and
// not when NO_COLOR is set or TERM is "dumb".
func colourful(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// checkModule is the config's check of a module section: an unknown module ID is a
// problem, and an enabled module is constructed (constructors do no I/O) so that the
// problems of its section are listed with the core's.
func checkModule(specs []ModuleSpec) config.ModuleCheck {
	return func(cfg *config.Config, id string, section config.ModuleConfig) error {
		i := slices.IndexFunc(specs, func(s ModuleSpec) bool { return s.ID == id })
		switch {
		case i < 0:
			return errNoSuchModule
		case !section.Enabled:
			return nil
		}
		_, err := specs[i].New(section, Deps{Config: cfg})
		return err
	}
}

// errNoSuchModule is the problem of a module section without a module in this build.
var errNoSuchModule = errors.New("no such module in this build")

// openStore opens the database and names it (without a password) when that fails.
func openStore(ctx context.Context, db config.DatabaseConfig) (*store.Store, error) {
	st, err := store.Open(ctx, db.URI)
	if err == nil {
		return st, nil
	}
	if path, ok := db.SQLitePath(); ok {
		if abs, aerr := filepath.Abs(path); aerr == nil {
			path = abs
		}
		dir := filepath.Dir(path)
		if info, serr := os.Stat(dir); serr != nil || !info.IsDir() {
			return nil, fmt.Errorf("database.uri: cannot open the SQLite database %s: its directory %s does not exist "+
				"(create it, writable by the user Switchboard runs as): %w", path, dir, err)
		}
		return nil, fmt.Errorf("database.uri: cannot open the SQLite database %s: %w", path, err)
	}
	return nil, fmt.Errorf("database.uri: cannot open the database %s: %w", db.Redacted(), err)
}

// buildModules constructs the management bot and every enabled module, in list order.
func buildModules(cfg *config.Config, specs []ModuleSpec, st *store.Store) ([]appservice.Module, error) {
	bot, err := management.New(management.Config{Admins: cfg.Management.Admins})
	if err != nil {
		return nil, err
	}
	modules := []appservice.Module{bot}
	known := map[string]bool{}
	var errs []error
	for _, spec := range specs {
		known[spec.ID] = true
		section, ok := cfg.Modules[spec.ID]
		if !ok || !section.Enabled {
			continue
		}
		m, err := spec.New(section, Deps{Config: cfg, Store: st})
		if err != nil {
			if key := "modules." + spec.ID; !strings.HasPrefix(err.Error(), key) {
				err = fmt.Errorf("%s: %w", key, err)
			}
			errs = append(errs, err)
			continue
		}
		modules = append(modules, m)
	}
	for id := range cfg.Modules {
		if !known[id] {
			errs = append(errs, fmt.Errorf("modules.%s: %w", id, errNoSuchModule))
		}
	}
	return modules, errors.Join(errs...)
}

func namespacesOf(modules []appservice.Module) map[string]registration.Namespaces {
	out := map[string]registration.Namespaces{}
	for _, m := range modules {
		out[m.ID()] = m.Namespaces()
	}
	return out
}

func buildConfig(cfg *config.Config) registration.BuildConfig {
	return registration.BuildConfig{
		ID: cfg.AppService.ID, URL: cfg.AppService.PublicURL, BotLocalpart: cfg.AppService.Bot.Localpart,
		Domain: cfg.Homeserver.Domain, Ephemeral: cfg.AppService.EphemeralEvents,
		// Encryption needs device lists and one-time key counts in transactions (MSC3202) and
		// devices created by the appservice (MSC4190); to-device events come with Ephemeral.
		MSC3202: cfg.Encryption.Enabled, MSC4190: cfg.Encryption.Enabled,
	}
}

// encryptionOptions is the core's encryption setup from the encryption: section.
func encryptionOptions(enc config.EncryptionConfig) appservice.Encryption {
	return appservice.Encryption{
		Enabled: enc.Enabled, Default: enc.Default, Require: enc.Require,
		DecryptTimeout:   enc.DecryptTimeout.Std(),
		RotationPeriod:   enc.Rotation.Period.Std(),
		RotationMessages: enc.Rotation.Messages,
		PickleKey:        enc.PickleKey,
	}
}

func generateRegistration(cfg *config.Config, specs []ModuleSpec, path string) error {
	modules, err := buildModules(cfg, specs, nil)
	if err != nil {
		return err
	}
	existing, err := registration.Load(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to read the existing registration %s: %w", path, err)
	}
	reg, err := registration.Build(buildConfig(cfg), namespacesOf(modules), existing)
	if err != nil {
		return err
	}
	return registration.Save(path, reg)
}

func run(ctx context.Context, cfg *config.Config, specs []ModuleSpec, regPath, version string) error {
	log := zerolog.Ctx(ctx)
	// The operator endpoints answer from the start, before the database and the homeserver.
	metrics := prometheus.NewRegistry()
	var ops *opsServer
	if cfg.Metrics.Enabled {
		var err error
		if ops, err = startOps(ctx, cfg.Metrics.Listen, metrics, cfg.Metrics.Pprof); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			ops.shutdown(sctx)
		}()
	}
	reg, err := registration.Load(regPath)
	if err != nil {
		return fmt.Errorf("failed to read the registration (generate it with switchboard -g): %w", err)
	}
	ops.setPhase("opening the database")
	st, err := openStore(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	var leading func() bool // nil: no high availability, the process leads alone
	var leadership *store.Leadership
	if cfg.HighAvailability.Enabled {
		l, err := lead(ctx, cfg, st, ops, metrics)
		if err != nil {
			return err
		}
		defer l.Release()
		leading, leadership = l.Valid, l
	} else {
		ops.setPhase("waiting for the instance lock (is another Switchboard running on this database?)")
		release, err := st.LockInstance(ctx, 15*time.Second)
		if err != nil {
			return err
		}
		defer release()
	}
	ops.setPhase("building the modules")
	modules, err := buildModules(cfg, specs, st)
	if err != nil {
		return err
	}
	if implied, err := registration.Build(buildConfig(cfg), namespacesOf(modules), reg); err != nil {
		return err
	} else if diff := registration.Diff(reg, implied); len(diff) > 0 {
		log.Warn().Strs("differences", diff).Str("registration", regPath).
			Msg("The registration file no longer matches the config: rerun switchboard -g and restart the homeserver")
	}
	scanning, err := scanningOptions(cfg.Scanning)
	if err != nil {
		return err
	}
	core, err := appservice.New(appservice.Options{
		Registration: reg, HomeserverURL: cfg.Homeserver.Address, Domain: cfg.Homeserver.Domain,
		Store: st, Modules: modules, BotModule: management.ID, BotDisplayName: cfg.AppService.Bot.Displayname,
		Listen: cfg.AppService.Listen, Workers: cfg.AppService.Workers, MaxBodyBytes: cfg.AppService.MaxBodyBytes,
		Retry: appservice.Retry{
			Attempts: cfg.AppService.Retry.Attempts, Initial: cfg.AppService.Retry.Initial.Std(), Max: cfg.AppService.Retry.Max.Std(),
		},
		Version: version, Metrics: metrics, Permissions: cfg.Permissions(),
		Encryption: encryptionOptions(cfg.Encryption), Provisioning: provisioningOptions(cfg),
		Scanning: scanning, Leading: leading,
	})
	if err != nil {
		return err
	}
	ops.setCore(core)
	if err := core.Start(ctx); err != nil {
		return err
	}
	if leadership != nil {
		announceTakeover(ctx, core, cfg.HighAvailability, leadership)
	}
	log.Info().Str("version", version).Int("modules", len(modules)).Msg("Switchboard is running")
	<-ctx.Done()
	log.Info().Msg("Shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.AppService.ShutdownTimeout.Std())
	defer cancel()
	return core.Stop(sctx)
}

// provisioningOptions is the core's provisioning API configuration; nil when it is off.
func provisioningOptions(cfg *config.Config) *appservice.Provisioning {
	p := cfg.Provisioning
	if !p.Enabled {
		return nil
	}
	return &appservice.Provisioning{SharedSecret: p.SharedSecret, OpenID: p.OpenID, OpenIDURL: p.OpenIDURL,
		Admins: cfg.Management.Admins}
}
