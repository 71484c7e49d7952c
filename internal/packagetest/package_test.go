package packagetest

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/registration"
)

// The paths of the installed package (packaging/, scripts/package).
const (
	binPath      = "/usr/bin/switchboard"
	unitPath     = "/lib/systemd/system/switchboard.service"
	confDir      = "/etc/switchboard"
	configPath   = confDir + "/config.yaml"
	regPath      = confDir + "/registration.yaml"
	stateDir     = "/var/lib/switchboard"
	databasePath = stateDir + "/switchboard.db"
	// wantsLink is what "systemctl enable switchboard" creates.
	wantsLink = "/etc/systemd/system/multi-user.target.wants/switchboard.service"
	// maxExposure is the worst "systemd-analyze security" exposure level the unit may have
	// (0 is best, 10 worst; up to 2.0 systemd rates it "OK").
	maxExposure = 2.0
)

// pkg is the package scripts/package built.
type pkg struct {
	deb     string // the .deb
	bin     string // the release binary next to it
	version string // the package's Version
	commit  string // git rev-parse HEAD of the tree; "" outside a git checkout
}

// TestPackage builds the package, checks it, and as root installs, checks, runs, removes and
// purges it: the steps of docs/operations.md up to "systemctl enable".
func TestPackage(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		peerproc.RequireOrSkip(t, "dpkg-deb", err)
	}
	root := os.Geteuid() == 0
	if root {
		// A leftover of an earlier run: the package, or what a failed purge left.
		purge(t)
		for _, dir := range []string{confDir, stateDir} {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := build(t)
	checkDeb(t, p)
	if !root {
		peerproc.RequireOrSkip(t, "dpkg -i", errors.New("installing the package needs root"))
	}
	for _, tool := range []string{"dpkg", "dpkg-reconfigure", "systemd-analyze", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			peerproc.RequireOrSkip(t, tool, err)
		}
	}
	t.Cleanup(func() { purge(t) })

	out := run(t, "dpkg", "-i", p.deb)
	for _, want := range []string{regPath, "app_service_config_files", "app_service_api.config_files", "systemctl enable --now switchboard"} {
		if !strings.Contains(out, want) {
			t.Errorf("dpkg -i printed no %q:\n%s", want, out)
		}
	}
	checkUser(t)
	checkFiles(t, installedFiles)
	checkUnit(t)
	if got := run(t, binPath, "-version"); !strings.HasPrefix(got, versionLine(p)) {
		t.Errorf("%s -version = %q, want it to start with %q", binPath, got, versionLine(p))
	}
	reg := checkRegistration(t, "http://127.0.0.1:29300")

	// Point the config at this test's ports, as an admin points it at the homeserver, and
	// update the registration with dpkg-reconfigure: new URL, the same tokens.
	hsPort, asPort, opsPort := freePort(t), freePort(t), freePort(t)
	editConfig(t, map[string]string{
		"address: http://127.0.0.1:8008": fmt.Sprintf("address: http://127.0.0.1:%d", hsPort),
		"127.0.0.1:29300":                fmt.Sprintf("127.0.0.1:%d", asPort),
		"127.0.0.1:29301":                fmt.Sprintf("127.0.0.1:%d", opsPort),
	})
	run(t, "dpkg-reconfigure", "switchboard")
	checkFiles(t, installedFiles)
	again := checkRegistration(t, fmt.Sprintf("http://127.0.0.1:%d", asPort))
	if again.AppToken != reg.AppToken || again.ServerToken != reg.ServerToken {
		t.Error("dpkg-reconfigure changed the registration's tokens")
	}

	runAsService(t, opsPort)
	for _, kind := range []string{"dendrite", "synapse"} {
		t.Run(kind, func(t *testing.T) { runOnHomeserver(t, kind, p.version, hsPort, opsPort) })
	}

	// An upgrade (here: the same package again) keeps the edited config and the tokens.
	run(t, "dpkg", "-i", p.deb)
	checkFiles(t, installedFiles)
	if config, err := os.ReadFile(configPath); err != nil || !strings.Contains(string(config), fmt.Sprintf("127.0.0.1:%d", opsPort)) {
		t.Errorf("dpkg -i over the installed package lost the config's changes (%v)", err)
	}
	upgraded := checkRegistration(t, fmt.Sprintf("http://127.0.0.1:%d", asPort))
	if upgraded.AppToken != reg.AppToken || upgraded.ServerToken != reg.ServerToken {
		t.Error("dpkg -i over the installed package changed the registration's tokens")
	}
	run(t, "systemctl", "enable", "switchboard")
	if _, err := os.Lstat(wantsLink); err != nil {
		t.Errorf("systemctl enable made no %s: %v", wantsLink, err)
	}

	// remove keeps the configuration, the registration and the database.
	run(t, "dpkg", "-r", "switchboard")
	for _, gone := range []string{binPath, unitPath} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after dpkg -r: %s is still there (%v)", gone, err)
		}
	}
	checkFiles(t, keptFiles)

	// purge keeps nothing of them; the system user stays (docs/operations.md).
	run(t, "dpkg", "--purge", "switchboard")
	for _, gone := range []string{confDir, stateDir, wantsLink} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after dpkg --purge: %s is still there (%v)", gone, err)
		}
	}
	if status := packageStatus(); status != "" {
		t.Errorf("after dpkg --purge the package is %q", status)
	}
	if _, err := user.Lookup("switchboard"); err != nil {
		t.Errorf("after dpkg --purge the user switchboard is gone, docs/operations.md says it stays: %v", err)
	}
}

// build runs scripts/package for the host's architecture into a temporary directory.
func build(t *testing.T) pkg {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "scripts", "package"))
	cmd.Env = append(os.Environ(), "SWITCHBOARD_PACKAGE_ARCHS="+runtime.GOARCH, "SWITCHBOARD_PACKAGE_DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "switchboard_*_"+runtime.GOARCH+".deb"))
	bins, _ := filepath.Glob(filepath.Join(dist, "switchboard-*-linux-"+runtime.GOARCH))
	if len(debs) != 1 || len(bins) != 1 {
		t.Fatalf("scripts/package made %v and %v, want one .deb and one binary", debs, bins)
	}
	p := pkg{deb: debs[0], bin: bins[0], version: run(t, "dpkg-deb", "-f", debs[0], "Version")}
	if head, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output(); err == nil {
		p.commit = strings.TrimSpace(string(head))
	}
	return p
}

// versionLine is what -version prints for p, up to the commit's "+modified".
func versionLine(p pkg) string {
	if p.commit == "" {
		return "switchboard " + p.version
	}
	return "switchboard " + p.version + " (commit " + p.commit
}

// checkDeb checks the package's fields, files and conffiles and the static binary.
func checkDeb(t *testing.T, p pkg) {
	t.Helper()
	for field, want := range map[string]string{"Package": "switchboard", "Architecture": runtime.GOARCH} {
		if got := run(t, "dpkg-deb", "-f", p.deb, field); got != want {
			t.Errorf("%s: %s %q, want %q", p.deb, field, got, want)
		}
	}
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(p.version) {
		t.Errorf("Version %q is not a package version", p.version)
	}
	listing := map[string]string{} // path → "mode owner"
	for _, line := range strings.Split(run(t, "dpkg-deb", "-c", p.deb), "\n") {
		if f := strings.Fields(line); len(f) >= 6 {
			listing[strings.TrimSuffix(f[len(f)-1], "/")] = f[0] + " " + f[1]
		}
	}
	for _, tc := range []struct{ path, want string }{
		{"./usr/bin/switchboard", "-rwxr-xr-x root/root"},
		{"./lib/systemd/system/switchboard.service", "-rw-r--r-- root/root"},
		{"./etc/switchboard", "drwxr-x--- root/root"},
		{"./etc/switchboard/config.yaml", "-rw-r----- root/root"},
		{"./usr/share/doc/switchboard/operations.md", "-rw-r--r-- root/root"},
	} {
		if got := listing[tc.path]; got != tc.want {
			t.Errorf("the package has %s as %q, want %q", tc.path, got, tc.want)
		}
	}
	if got := run(t, "dpkg-deb", "--info", p.deb, "conffiles"); got != configPath {
		t.Errorf("conffiles = %q, want %q", got, configPath)
	}

	f, err := elf.Open(p.bin)
	if err != nil {
		t.Fatalf("the release binary: %v", err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not a static binary", p.bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %v: not a static binary", p.bin, libs)
	}
	if runtime.GOARCH == "amd64" && f.Machine != elf.EM_X86_64 || runtime.GOARCH == "arm64" && f.Machine != elf.EM_AARCH64 {
		t.Errorf("%s is for %v, not %s", p.bin, f.Machine, runtime.GOARCH)
	}
	if got := run(t, p.bin, "-version"); !strings.HasPrefix(got, versionLine(p)) {
		t.Errorf("%s -version = %q, want it to start with %q", p.bin, got, versionLine(p))
	}
}

// fileWant is the mode, owner and group of one installed path.
type fileWant struct {
	path         string
	mode         fs.FileMode
	owner, group string
}

// installedFiles are the paths dpkg -i and postinst make.
var installedFiles = []fileWant{
	{binPath, 0o755, "root", "root"},
	{unitPath, 0o644, "root", "root"},
	{confDir, fs.ModeDir | 0o750, "root", "switchboard"},
	{configPath, 0o640, "root", "switchboard"},
	{regPath, 0o600, "switchboard", "switchboard"},
	{stateDir, fs.ModeDir | 0o700, "switchboard", "switchboard"},
}

// keptFiles are the paths dpkg -r keeps, with the database the service wrote.
var keptFiles = []fileWant{
	{configPath, 0o640, "root", "switchboard"},
	{regPath, 0o600, "switchboard", "switchboard"},
	{databasePath, 0o600, "switchboard", "switchboard"},
}

// checkFiles checks that each path exists with its mode, owner and group.
func checkFiles(t *testing.T, want []fileWant) {
	t.Helper()
	for _, w := range want {
		fi, err := os.Lstat(w.path)
		if err != nil {
			t.Errorf("%s: %v", w.path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		owner, group := lookupName(st.Uid, false), lookupName(st.Gid, true)
		if fi.Mode() != w.mode || owner != w.owner || group != w.group {
			t.Errorf("%s is %v %s:%s, want %v %s:%s", w.path, fi.Mode(), owner, group, w.mode, w.owner, w.group)
		}
	}
}

// lookupName returns the name of a user or group id, or the number.
func lookupName(id uint32, group bool) string {
	s := strconv.FormatUint(uint64(id), 10)
	if group {
		if g, err := user.LookupGroupId(s); err == nil {
			return g.Name
		}
		return s
	}
	if u, err := user.LookupId(s); err == nil {
		return u.Username
	}
	return s
}

// checkUser checks the system user and group switchboard.
func checkUser(t *testing.T) {
	t.Helper()
	entry := run(t, "getent", "passwd", "switchboard")
	f := strings.Split(entry, ":")
	if len(f) != 7 {
		t.Fatalf("getent passwd switchboard = %q", entry)
	}
	uid, _ := strconv.Atoi(f[2])
	if uid == 0 || uid >= 1000 || f[5] != stateDir || f[6] != "/usr/sbin/nologin" {
		t.Errorf("user switchboard is %q, want a system user with home %s and shell /usr/sbin/nologin", entry, stateDir)
	}
	g, err := user.LookupGroupId(f[3])
	if err != nil || g.Name != "switchboard" {
		t.Errorf("user switchboard's group is %s (%v), want switchboard", f[3], err)
	}
	// Making the user must leave the system's account files readable (a restrictive umask
	// around adduser would make /etc/passwd 0600 and break every other daemon's lookups).
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		if st, err := os.Stat(f); err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v after the install, want 0644", f, st.Mode().Perm())
		}
	}
}

// checkUnit runs systemd-analyze verify and security on the installed unit.
func checkUnit(t *testing.T) {
	t.Helper()
	if out := run(t, "systemd-analyze", "verify", unitPath); out != "" {
		t.Errorf("systemd-analyze verify %s says:\n%s", unitPath, out)
	}
	out := run(t, "systemd-analyze", "security", "--offline=true", "--no-pager", unitPath)
	m := regexp.MustCompile(`Overall exposure level for switchboard\.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security gave no exposure level:\n%s", out)
	}
	exposure, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security: exposure %.1f", exposure)
	if exposure > maxExposure {
		t.Errorf("systemd-analyze security: exposure %.1f, want at most %.1f:\n%s", exposure, maxExposure, out)
	}
}

// checkRegistration checks the registration file's content and returns it.
func checkRegistration(t *testing.T, url string) *appservice.Registration {
	t.Helper()
	reg, err := registration.Load(regPath)
	if err != nil {
		t.Fatalf("the registration: %v", err)
	}
	if reg.AppToken == "" || reg.ServerToken == "" || reg.SenderLocalpart != "switchboard" || reg.URL != url {
		t.Errorf("the registration has url %q, sender %q, tokens set %v/%v; want url %q, sender switchboard, both tokens",
			reg.URL, reg.SenderLocalpart, reg.AppToken != "", reg.ServerToken != "", url)
	}
	return reg
}

// editConfig replaces each old string of the installed config with its new one.
func editConfig(t *testing.T, replace map[string]string) {
	t.Helper()
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for old, repl := range replace {
		if !strings.Contains(text, old) {
			t.Fatalf("%s has no %q", configPath, old)
		}
		text = strings.ReplaceAll(text, old, repl)
	}
	if err := os.WriteFile(configPath, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
}

// packageStatus returns dpkg's status of switchboard, "" when dpkg does not know it.
func packageStatus() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "switchboard").Output()
	if err != nil {
		return ""
	}
	status := strings.TrimSpace(string(out))
	if status == "unknown ok not-installed" {
		return ""
	}
	return status
}

// purge purges the package when dpkg knows it (installed, removed or half-installed).
func purge(t *testing.T) {
	t.Helper()
	if packageStatus() == "" {
		return
	}
	if out, err := exec.Command("dpkg", "--purge", "switchboard").CombinedOutput(); err != nil {
		t.Errorf("dpkg --purge switchboard: %v\n%s", err, out)
	}
}

// freePort returns a free port of 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// run runs a command and returns its trimmed standard output; it fails t on an error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String() + stderr.String())
}
