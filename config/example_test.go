package config_test

import (
	"fmt"

	"github.com/switchboard-matrix/switchboard/config"
)

func ExampleParse() {
	cfg, err := config.Parse([]byte(`
homeserver:
  address: http://127.0.0.1:8008
  domain: localhost
modules:
  echo:
    enabled: true
    prefix: "echo: "
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	var echo struct {
		Prefix string `yaml:"prefix"`
	}
	if err := cfg.Modules["echo"].Decode(&echo); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.BotUserID(), cfg.AppService.PublicURL, cfg.Management.Admins, cfg.Management.Permissions)
	fmt.Printf("echo enabled=%v prefix=%q permissions=%v\n", cfg.Modules["echo"].Enabled, echo.Prefix, cfg.Modules["echo"].Permissions)
	// Output:
	// @switchboard:localhost http://127.0.0.1:29300 [] [*:localhost]
	// echo enabled=true prefix="echo: " permissions=[*:localhost]
}

func ExampleErrors() {
	_, err := config.Parse([]byte(`
homeserver:
  adress: http://127.0.0.1:8008
appservice:
  retry: {initial: 10s, max: 1s}
database:
  uri: mysql://root:secret@db/switchboard
`))
	fmt.Println(err)
	// Output:
	// homeserver.adress: unknown key (line 3)
	// homeserver.address: required
	// homeserver.domain: required
	// appservice.retry.max: must be >= appservice.retry.initial (line 5)
	// database.uri: unsupported scheme "mysql" (want sqlite or postgres) (line 7)
}

func ExampleEnvName() {
	fmt.Println(config.EnvName("modules.jitsi.uvs.auth_token"))
	fmt.Println(config.EnvName("modules.email.mailboxes[0].imap.password"))
	fmt.Println(config.IsSecretKey("database.uri"), config.IsSecretKey("homeserver.address"))
	// Output:
	// SWITCHBOARD_MODULES_JITSI_UVS_AUTH_TOKEN
	// SWITCHBOARD_MODULES_EMAIL_MAILBOXES_0_IMAP_PASSWORD
	// true false
}

func ExampleParseChecked() {
	// check is what a module does with its section at start: decode, then validate.
	check := func(_ *config.Config, id string, section config.ModuleConfig) error {
		var opts struct {
			Port int `yaml:"port"`
		}
		if err := section.Decode(&opts); err != nil {
			return err
		}
		if opts.Port == 0 {
			return fmt.Errorf("modules.%s.port: required", id)
		}
		return nil
	}
	_, err := config.ParseChecked([]byte(`
homeserver:
  address: http://127.0.0.1:8008
modules:
  echo:
    enabled: true
    port: many
  other:
    enabled: true
`), check)
	fmt.Println(err)
	// Output:
	// homeserver.domain: required
	// modules.echo.port: want a whole number, got "many" (line 7)
	// modules.other.port: required
}
