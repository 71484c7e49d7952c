// Package config is Switchboard's YAML configuration: one file for the whole process with a
// section per concern (homeserver, appservice, database, logging, metrics, management) and one
// section per module under "modules".
//
// [Load] and [Parse] decode strictly (an unknown key or a key given twice is an error with
// its line), fill the defaults and validate. Every problem is reported at once, each with its
// full key path and, where the key is in the file, its line, in a [*Errors]; messages
// describe the wanted value ("want a whole number"), never a Go type. [LoadChecked] also runs
// each module's own checks, so that the problems of the module sections come in the same
// list. Values that may hold secrets, such as the database URI, never appear in an error.
//
// Secrets need not be in the file: every secret key (see [IsSecretKey]) also accepts
// "<key>_file: /path" and the environment variables [EnvName] and [EnvName]+"_FILE". The
// environment wins over the file form, the file form over the value in the file.
//
// Each module decodes its own section with [ModuleConfig.Decode], which is strict too. A
// commented example of every key is embedded as [Example].
package config
