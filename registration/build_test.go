package registration

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"maunium.net/go/mautrix/appservice"
)

var testConfig = BuildConfig{
	ID:           "switchboard",
	URL:          "http://127.0.0.1:29300",
	BotLocalpart: "switchboard",
	Domain:       "localhost",
	Ephemeral:    true,
}

var testModules = map[string]Namespaces{
	"xmpp": {
		Users:   []Pattern{{Localpart: "_xmpp_.+", Exclusive: true}},
		Aliases: []Pattern{{Localpart: "_xmpp_.+", Exclusive: true}},
	},
	"email": {
		Users: []Pattern{{Localpart: "_email_.+", Exclusive: true}, {Localpart: ".*", Exclusive: false}},
	},
}

func TestBuild(t *testing.T) {
	reg, err := Build(testConfig, testModules, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantUsers := appservice.NamespaceList{
		{Regex: `^@(?:switchboard):localhost$`, Exclusive: true},
		{Regex: `^@(?:_email_.+):localhost$`, Exclusive: true},
		{Regex: `^@(?:.*):localhost$`, Exclusive: false},
		{Regex: `^@(?:_xmpp_.+):localhost$`, Exclusive: true},
	}
	wantAliases := appservice.NamespaceList{{Regex: `^#(?:_xmpp_.+):localhost$`, Exclusive: true}}
	if !reflect.DeepEqual(reg.Namespaces.UserIDs, wantUsers) {
		t.Errorf("users = %+v, want %+v", reg.Namespaces.UserIDs, wantUsers)
	}
	if !reflect.DeepEqual(reg.Namespaces.RoomAliases, wantAliases) {
		t.Errorf("aliases = %+v, want %+v", reg.Namespaces.RoomAliases, wantAliases)
	}
	if reg.ID != "switchboard" || reg.URL != testConfig.URL || reg.SenderLocalpart != "switchboard" {
		t.Errorf("id/url/sender = %q %q %q", reg.ID, reg.URL, reg.SenderLocalpart)
	}
	if reg.RateLimited == nil || *reg.RateLimited {
		t.Errorf("rate_limited = %v, want explicit false", reg.RateLimited)
	}
	if !reg.EphemeralEvents || !reg.SoruEphemeralEvents {
		t.Error("ephemeral flags not set")
	}
	tokenRE := regexp.MustCompile(`^[0-9A-Za-z]{64}$`)
	if !tokenRE.MatchString(reg.AppToken) || !tokenRE.MatchString(reg.ServerToken) || reg.AppToken == reg.ServerToken {
		t.Errorf("tokens are not two distinct 64-character base62 strings")
	}

	again, err := Build(testConfig, testModules, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.AppToken == reg.AppToken {
		t.Error("a fresh build reused the tokens")
	}
	again.AppToken, again.ServerToken = reg.AppToken, reg.ServerToken
	if !reflect.DeepEqual(again, reg) {
		t.Error("Build is not deterministic")
	}
}

func TestBuildKeepsTokens(t *testing.T) {
	tests := []struct {
		name     string
		existing *appservice.Registration
		wantAS   string // "" means a new token is expected
		wantHS   string
	}{
		{"both kept", &appservice.Registration{AppToken: "as", ServerToken: "hs"}, "as", "hs"},
		{"missing hs_token generated", &appservice.Registration{AppToken: "as"}, "as", ""},
		{"no existing registration", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := Build(testConfig, nil, tt.existing)
			if err != nil {
				t.Fatal(err)
			}
			check := func(name, got, want string) {
				if want != "" && got != want {
					t.Errorf("%s = %q, want the existing %q", name, got, want)
				}
				if want == "" && len(got) != tokenLength {
					t.Errorf("%s = %q, want a new token", name, got)
				}
			}
			check("as_token", reg.AppToken, tt.wantAS)
			check("hs_token", reg.ServerToken, tt.wantHS)
		})
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     BuildConfig
		modules map[string]Namespaces
		is      error
		want    []string // substrings of the message
	}{
		{
			name: "missing domain",
			cfg:  BuildConfig{ID: "a", URL: "http://x", BotLocalpart: "b"},
			is:   ErrInvalidConfig,
			want: []string{"Domain is required"},
		},
		{
			name:    "reserved module ID",
			cfg:     testConfig,
			modules: map[string]Namespaces{"bot": {}},
			is:      ErrInvalidConfig,
			want:    []string{`"bot" is reserved`},
		},
		{
			name:    "invalid pattern",
			cfg:     testConfig,
			modules: map[string]Namespaces{"xmpp": {Users: []Pattern{{Localpart: "_xmpp_(", Exclusive: true}}}},
			is:      ErrInvalidPattern,
			want:    []string{`module "xmpp"`, `users pattern "_xmpp_("`},
		},
		{
			name:    "unbalanced pattern that would compile when wrapped",
			cfg:     testConfig,
			modules: map[string]Namespaces{"xmpp": {Aliases: []Pattern{{Localpart: "a)|(b"}}}},
			is:      ErrInvalidPattern,
			want:    []string{`module "xmpp"`, `aliases pattern "a)|(b"`},
		},
		{
			name:    "empty pattern",
			cfg:     testConfig,
			modules: map[string]Namespaces{"xmpp": {Users: []Pattern{{}}}},
			is:      ErrInvalidPattern,
			want:    []string{`module "xmpp": empty users pattern`},
		},
		{
			name: "modules overlap",
			cfg:  testConfig,
			modules: map[string]Namespaces{
				"xmpp": {Users: []Pattern{{Localpart: "_xmpp_.*", Exclusive: true}}},
				"x":    {Users: []Pattern{{Localpart: "_x.*", Exclusive: true}}},
			},
			is:   ErrOverlap,
			want: []string{`module "x" ("_x.*")`, `module "xmpp" ("_xmpp_.*")`, `both match "@_xmpp_:localhost"`},
		},
		{
			name:    "module claims the bot",
			cfg:     testConfig,
			modules: map[string]Namespaces{"greedy": {Users: []Pattern{{Localpart: "s.*", Exclusive: true}}}},
			is:      ErrOverlap,
			want:    []string{`module "bot" ("switchboard")`, `module "greedy" ("s.*")`},
		},
		{
			name: "aliases overlap",
			cfg:  testConfig,
			modules: map[string]Namespaces{
				"a": {Aliases: []Pattern{{Localpart: "room_[0-9]+", Exclusive: true}}},
				"b": {Aliases: []Pattern{{Localpart: "room_1.*", Exclusive: true}}},
			},
			is:   ErrOverlap,
			want: []string{"exclusive aliases namespaces overlap", `both match "#room_1:localhost"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := Build(tt.cfg, tt.modules, nil)
			if err == nil {
				t.Fatalf("Build succeeded: %+v", reg.Namespaces)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestBuildAllowsOverlaps(t *testing.T) {
	tests := []struct {
		name    string
		modules map[string]Namespaces
	}{
		{"same module", map[string]Namespaces{"a": {Users: []Pattern{{"x.*", true}, {"xy.*", true}}}}},
		{"one not exclusive", map[string]Namespaces{
			"a": {Users: []Pattern{{"x.*", true}}},
			"b": {Users: []Pattern{{".*", false}}},
		}},
		{"user and alias namespaces are separate", map[string]Namespaces{
			"a": {Users: []Pattern{{"x.*", true}}},
			"b": {Aliases: []Pattern{{"x.*", true}}},
		}},
		{"case matters", map[string]Namespaces{
			"a": {Users: []Pattern{{"X.*", true}}},
			"b": {Users: []Pattern{{"x.*", true}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(testConfig, tt.modules, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 200 {
		tok, err := newToken()
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != tokenLength || seen[tok] {
			t.Fatalf("bad or repeated token %q", tok)
		}
		seen[tok] = true
		for _, r := range tok {
			counts[r]++
		}
	}
	if len(counts) != len(tokenAlphabet) {
		t.Errorf("tokens use %d characters, want all %d", len(counts), len(tokenAlphabet))
	}
}

// TestBuildMSCFlags: MSC3202 and MSC4190 reach the registration file under the keys Synapse
// reads (synapse/config/appservice.py), and stay out of it when off.
func TestBuildMSCFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		on       bool
		wantKeys []string
	}{
		{"on", true, []string{"org.matrix.msc3202: true", "io.element.msc4190: true"}},
		{"off", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig
			cfg.MSC3202, cfg.MSC4190 = tc.on, tc.on
			reg, err := Build(cfg, testModules, nil)
			if err != nil {
				t.Fatal(err)
			}
			path := t.TempDir() + "/registration.yaml"
			if err := Save(path, reg); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.wantKeys {
				if !strings.Contains(string(data), k) {
					t.Errorf("registration lacks %q:\n%s", k, data)
				}
			}
			if !tc.on && (strings.Contains(string(data), "msc3202") || strings.Contains(string(data), "msc4190")) {
				t.Errorf("registration has MSC keys while off:\n%s", data)
			}
		})
	}
}
