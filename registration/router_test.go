package registration

import (
	"errors"
	"testing"

	"maunium.net/go/mautrix/id"
)

func TestRouter(t *testing.T) {
	r, err := NewRouter("example.org", map[string]Namespaces{
		"xmpp":  {Users: []Pattern{{"_xmpp_.+", true}}, Aliases: []Pattern{{"_xmpp_.+", true}}},
		"email": {Users: []Pattern{{"_email_.+", true}}},
		"zzz":   {Users: []Pattern{{"_.+", false}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	users := []struct {
		name   string
		user   id.UserID
		module string
		ok     bool
	}{
		{"xmpp ghost", "@_xmpp_alice=40example.com:example.org", "xmpp", true},
		{"email ghost", "@_email_bob:example.org", "email", true},
		{"falls through to a non-exclusive claim", "@_other:example.org", "zzz", true},
		{"the bot is not a module", "@switchboard:example.org", "", false},
		{"other server", "@_xmpp_alice:example.com", "", false},
		{"domain is not a regex", "@_xmpp_alice:exampleXorg", "", false},
		{"empty ghost name", "@_xmpp_:example.org", "zzz", true},
	}
	for _, tt := range users {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := r.ModuleForUser(tt.user)
			if m != tt.module || ok != tt.ok {
				t.Errorf("ModuleForUser(%s) = %q, %v; want %q, %v", tt.user, m, ok, tt.module, tt.ok)
			}
		})
	}
	aliases := []struct {
		name   string
		alias  id.RoomAlias
		module string
		ok     bool
	}{
		{"xmpp room", "#_xmpp_room=40muc.example.com:example.org", "xmpp", true},
		{"user sigil", "@_xmpp_room:example.org", "", false},
		{"unclaimed", "#_email_x:example.org", "", false},
	}
	for _, tt := range aliases {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := r.ModuleForAlias(tt.alias)
			if m != tt.module || ok != tt.ok {
				t.Errorf("ModuleForAlias(%s) = %q, %v; want %q, %v", tt.alias, m, ok, tt.module, tt.ok)
			}
		})
	}
}

func TestRouterFirstModuleWins(t *testing.T) {
	r, err := NewRouter("localhost", map[string]Namespaces{
		"b": {Users: []Pattern{{".*", false}}},
		"a": {Users: []Pattern{{".*", false}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if m, _ := r.ModuleForUser("@x:localhost"); m != "a" {
			t.Fatalf("ModuleForUser = %q, want the first module ID, a", m)
		}
	}
}

func TestRouterInvalidPattern(t *testing.T) {
	_, err := NewRouter("localhost", map[string]Namespaces{"x": {Aliases: []Pattern{{"[", true}}}})
	if !errors.Is(err, ErrInvalidPattern) {
		t.Errorf("err = %v, want ErrInvalidPattern", err)
	}
}
