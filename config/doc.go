// Package config is Switchboard's YAML configuration: one file for the whole process with a
// section per concern (homeserver, appservice, database, logging, metrics, management) and one
// section per module under "modules".
//
// [Load] and [Parse] decode strictly (an unknown key is an error with its line), fill the
// defaults and validate. Every problem is reported at once, each with its full key path, in a
// [*Errors]. Values that may hold secrets, such as the database URI, never appear in an error.
//
// Each module decodes its own section with [ModuleConfig.Decode], which is strict too. A
// commented example of every key is embedded as [Example].
package config
