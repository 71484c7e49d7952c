package ucrm

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri/spec"
)

// App ids and versions the fake UCRM knows; every participant supports both.
const (
	AppIncident  = "incident_transfer_with_patient"
	AppTransport = "transport_layer_messages"
	AppVersion   = "1.0"
)

// specBase is the URL under which the files of spec.FS are registered with the compiler.
const specBase = "file:///ucri2/"

// schemas are the compiled validators, built once from the embedded official files.
type schemas struct {
	senderRequest   *jsonschema.Schema
	receiverRequest *jsonschema.Schema
	messageRef      *jsonschema.Schema
	apps            map[string]map[string]map[string]*jsonschema.Schema // appId → version → schemaId
}

var loadSchemas = sync.OnceValues(compileSchemas)

// noLoader refuses every URL that was not added as a resource: no network, no disk.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("ucrm: schema %s is not embedded", url)
}

// newCompiler returns a compiler that knows every file of spec.FS, asserts formats (uuid,
// date-time, …; unknown formats such as OpenAPI's "binary" and "int64" stay annotations)
// and reads nothing else.
func newCompiler() (*jsonschema.Compiler, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	err := fs.WalkDir(spec.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := spec.FS.ReadFile(path)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return c.AddResource(specBase+path, doc)
	})
	if err != nil {
		return nil, fmt.Errorf("ucrm: failed to load the embedded specification: %w", err)
	}
	return c, nil
}

// apiSchema is the location of a component schema of the bundled Client API.
func apiSchema(name string) string {
	return specBase + spec.ClientAPI + "#/components/schemas/" + name
}

func compileSchemas() (*schemas, error) {
	c, err := newCompiler()
	if err != nil {
		return nil, err
	}
	s := &schemas{apps: map[string]map[string]map[string]*jsonschema.Schema{}}
	for name, dst := range map[string]**jsonschema.Schema{
		"SenderRequest":   &s.senderRequest,
		"ReceiverRequest": &s.receiverRequest,
		"MessageRef":      &s.messageRef,
	} {
		if *dst, err = c.Compile(apiSchema(name)); err != nil {
			return nil, fmt.Errorf("ucrm: failed to compile %s: %w", name, err)
		}
	}
	apps := map[string][]string{
		AppIncident:  {"incident", "acknowledgement", "completion"},
		AppTransport: {"message_delivery_status", "participant_availability_update"},
	}
	for app, ids := range apps {
		s.apps[app] = map[string]map[string]*jsonschema.Schema{AppVersion: {}}
		for _, id := range ids {
			sch, err := c.Compile(specBase + spec.AppSchema(app, AppVersion, id))
			if err != nil {
				return nil, fmt.Errorf("ucrm: failed to compile %s/%s/%s: %w", app, AppVersion, id, err)
			}
			s.apps[app][AppVersion][id] = sch
		}
	}
	return s, nil
}

// CompileAPISchema compiles a schema of the bundled Client API by JSON pointer into the
// document, e.g. "#/components/schemas/CommParticipant" or
// "#/paths/~1registry/get/responses/200/content/application~1json/schema", for tests that
// check answers against the specification.
func CompileAPISchema(pointer string) (*jsonschema.Schema, error) {
	c, err := newCompiler()
	if err != nil {
		return nil, err
	}
	return c.Compile(specBase + spec.ClientAPI + pointer)
}

var printer = message.NewPrinter(language.English)

// describe turns a validation error into one line naming every failing instance location,
// e.g. "/payload/contentType: value must be one of ...; /timeout: minimum: got 5, want 10".
func describe(err error) string {
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return err.Error()
	}
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			leaves = append(leaves, loc+": "+e.ErrorKind.LocalizedString(printer))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(verr)
	slices.Sort(leaves)
	return strings.Join(slices.Compact(leaves), "; ")
}
