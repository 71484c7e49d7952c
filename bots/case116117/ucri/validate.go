package ucri

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri/spec"
)

// specBaseURL is where the official schemas live; their $id are under it. The loader maps
// these URLs to the copies in spec.FS and loads nothing else, so compiling never touches
// the network or the file system.
const specBaseURL = "https://github.com/PMeV-EFUL/ucri2/raw/refs/heads/main/"

// clientAPIURL is the official location of the bundled UCRM Client API (spec.ClientAPI).
const clientAPIURL = specBaseURL + "api/crm/2.0.0/ucrm-client-bundled.json"

// Limits of the problem descriptions in *Error.Message.
const (
	maxProblems   = 3  // failing locations named per error
	maxValueRunes = 40 // runes of a value or property name quoted from the data
)

// specLoader loads the official schema URLs from spec.FS.
type specLoader struct{}

func (specLoader) Load(url string) (any, error) {
	p, ok := strings.CutPrefix(url, specBaseURL)
	if !ok {
		return nil, fmt.Errorf("ucri: schema %s is not embedded", url)
	}
	if rest, ok := strings.CutPrefix(p, "api/crm/2.0.0/"); ok {
		p = "api/" + rest
	}
	if !fs.ValidPath(p) {
		return nil, fmt.Errorf("ucri: schema %s is not embedded", url)
	}
	f, err := spec.FS.Open(p)
	if err != nil {
		return nil, fmt.Errorf("ucri: schema %s is not embedded: %w", url, err)
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// newCompiler returns a compiler for JSON Schema 2020-12 documents in spec.FS. strict turns
// format assertions on; otherwise formats are annotations, the 2020-12 default.
func newCompiler(strict bool) *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(specLoader{})
	if strict {
		c.AssertFormat()
	}
	return c
}

// appKey names an app message schema.
type appKey struct{ app, version, schema string }

// appSchemas are the compiled app message schemas, built once by loadAppSchemas.
var appSchemas struct {
	once     sync.Once
	versions map[string]map[string]bool // appId → appVersion → true
	loose    map[appKey]*jsonschema.Schema
	strict   map[appKey]*jsonschema.Schema
	err      error
}

// loadAppSchemas compiles every apps/<appId>/<appVersion>/<schemaId>.schema.json of
// spec.FS, with and without format assertions. It is safe for concurrent use.
func loadAppSchemas() error {
	appSchemas.once.Do(func() {
		appSchemas.err = compileAppSchemas()
	})
	return appSchemas.err
}

func compileAppSchemas() error {
	versions := map[string]map[string]bool{}
	loose := map[appKey]*jsonschema.Schema{}
	strict := map[appKey]*jsonschema.Schema{}
	lc, sc := newCompiler(false), newCompiler(true)
	files, err := fs.Glob(spec.FS, "apps/*/*/*.schema.json")
	if err != nil {
		return fmt.Errorf("ucri: failed to list app schemas: %w", err)
	}
	for _, f := range files {
		parts := strings.Split(f, "/")
		k := appKey{parts[1], parts[2], strings.TrimSuffix(parts[3], ".schema.json")}
		if versions[k.app] == nil {
			versions[k.app] = map[string]bool{}
		}
		versions[k.app][k.version] = true
		url := specBaseURL + f
		if loose[k], err = lc.Compile(url); err != nil {
			return fmt.Errorf("ucri: failed to compile %s: %w", f, err)
		}
		if strict[k], err = sc.Compile(url); err != nil {
			return fmt.Errorf("ucri: failed to compile %s: %w", f, err)
		}
	}
	appSchemas.versions, appSchemas.loose, appSchemas.strict = versions, loose, strict
	return nil
}

// ValidateData validates an app message's JSON text against the official schema of appID,
// appVersion and schemaID. It returns nil or an *Error with the UCRI2 code: 461 unknown
// appId, 462 unknown appVersion, 463 unknown schemaId, 465 data is not a JSON object, 464
// data violates the schema (the Message names up to three failing JSON pointers and what is
// wrong, never more than a short cut of a value). Numbers longer than 64 characters or with
// an exponent beyond ±400 are refused (464) before validation.
//
// strict turns format assertions (uuid, date, date-time) on. Switchboard validates what it
// sends strictly and what it receives non-strictly: the official documentation writes
// date-times without zone ("2018-11-13T20:20:39", meaning UTC) and the official incident
// example has dateOfBirth "19801230", both of which fail the formats.
func ValidateData(appID, appVersion, schemaID string, data []byte, strict bool) error {
	if err := loadAppSchemas(); err != nil {
		return &Error{Code: CodeInternalError, Reason: "schemas not available", Message: err.Error()}
	}
	if appSchemas.versions[appID] == nil {
		return &Error{Code: CodeUnknownAppID, Reason: "unknown appId", Message: "appId " + quoteClipped(appID)}
	}
	if !appSchemas.versions[appID][appVersion] {
		return &Error{Code: CodeUnknownAppVersion, Reason: "unknown appVersion",
			Message: "appVersion " + quoteClipped(appVersion) + " of " + appID}
	}
	k := appKey{appID, appVersion, schemaID}
	sch := appSchemas.loose[k]
	if strict {
		sch = appSchemas.strict[k]
	}
	if sch == nil {
		return &Error{Code: CodeUnknownSchemaID, Reason: "unknown schemaId",
			Message: "schemaId " + quoteClipped(schemaID) + " of " + appID + " " + appVersion}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &Error{Code: CodeInvalidJSON, Reason: "data is not JSON", Message: jsonErrorText(err)}
	}
	if _, ok := doc.(map[string]any); !ok {
		return &Error{Code: CodeInvalidJSON, Reason: "data is not a JSON object"}
	}
	if p := checkNumbers(doc, nil); p != nil {
		return &Error{Code: CodeInvalidPayload, Reason: "data violates the schema " + schemaID, Message: p.String()}
	}
	if err := sch.Validate(doc); err != nil {
		return &Error{Code: CodeInvalidPayload, Reason: "data violates the schema " + schemaID,
			Message: describeProblems(schemaProblems(err)...)}
	}
	return nil
}

// DecodePayload validates an app message (non-strictly, see ValidateData) and decodes it
// into *Incident, *Acknowledgement, *Completion, *DeliveryStatus or *AvailabilityUpdate.
// Errors are *Error: 466 for an encrypted payload (application/jose, which Switchboard does
// not support), 460 for another unknown contentType, else those of ValidateData.
func DecodePayload(p Payload) (Message, error) {
	switch p.ContentType {
	case ContentTypeJSON:
	case ContentTypeJOSE:
		return nil, &Error{Code: CodeUnsupportedApp, Reason: "encrypted payloads are not supported"}
	default:
		return nil, &Error{Code: CodeInvalidTransport, Reason: "unknown contentType",
			Message: "/payload/contentType: " + quoteClipped(p.ContentType)}
	}
	data := []byte(p.Data)
	if err := ValidateData(p.AppID, p.AppVersion, p.SchemaID, data, false); err != nil {
		return nil, err
	}
	m := newMessage(p.AppID, p.SchemaID)
	if m == nil {
		return nil, &Error{Code: CodeUnknownSchemaID, Reason: "unsupported schemaId",
			Message: "schemaId " + quoteClipped(p.SchemaID) + " of " + p.AppID}
	}
	if err := json.Unmarshal(data, m); err != nil {
		doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		return nil, &Error{Code: CodeInvalidPayload, Reason: "data violates the schema " + p.SchemaID,
			Message: unrepresentable(doc, err, nil).String()}
	}
	normalize(m)
	return m, nil
}

// NewPayload encodes m, validates it strictly (see ValidateData) and returns it as an
// unencrypted payload of AppVersion.
func NewPayload(m Message) (Payload, error) {
	if m == nil {
		return Payload{}, errors.New("ucri: NewPayload of a nil message")
	}
	appID, schemaID := m.Kind()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return Payload{}, fmt.Errorf("ucri: failed to encode %s: %w", schemaID, err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err := ValidateData(appID, AppVersion, schemaID, data, true); err != nil {
		return Payload{}, err
	}
	return Payload{
		AppID:       appID,
		AppVersion:  AppVersion,
		SchemaID:    schemaID,
		ContentType: ContentTypeJSON,
		Data:        string(data),
	}, nil
}

// Limits of JSON numbers, checked before validation: the validator computes with exact
// rationals, and 1e999999999 would take it minutes and gigabytes.
const (
	maxNumberLen      = 64
	maxNumberExponent = 400
)

// checkNumbers returns the first number in doc that is longer than maxNumberLen or whose
// exponent exceeds maxNumberExponent, as a problem.
func checkNumbers(doc any, ptr []string) *problem {
	switch v := doc.(type) {
	case json.Number:
		s := string(v)
		if len(s) > maxNumberLen {
			return &problem{ptr: slices.Clone(ptr), text: "number too long"}
		}
		if i := strings.IndexAny(s, "eE"); i >= 0 {
			exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
			if err != nil || exp > maxNumberExponent || exp < -maxNumberExponent {
				return &problem{ptr: slices.Clone(ptr), text: "number out of range"}
			}
		}
	case map[string]any:
		for k, e := range v {
			if p := checkNumbers(e, append(ptr, k)); p != nil {
				return p
			}
		}
	case []any:
		for i, e := range v {
			if p := checkNumbers(e, append(ptr, strconv.Itoa(i))); p != nil {
				return p
			}
		}
	}
	return nil
}

// unrepresentable describes why a document that passed its schema could not be decoded
// into the Go types: a number that does not fit its Go field (an integer beyond int64, or
// written as 1e2 or 200.0, which JSON Schema counts as integers; a number beyond float64).
// prefix is the location of doc.
func unrepresentable(doc any, err error, prefix []string) problem {
	p := problem{ptr: slices.Clone(prefix), text: "value out of range"}
	te, ok := errors.AsType[*json.UnmarshalTypeError](err)
	if !ok || te.Field == "" || te.Type == nil {
		return p
	}
	isInt := false
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		isInt = true
	}
	if ptr := locateNumber(doc, strings.Split(te.Field, "."), isInt, nil); ptr != nil {
		p.ptr = append(p.ptr, ptr...)
	}
	return p
}

// locateNumber finds the first number at the Go field path (JSON names and names of
// embedded structs, array indexes left out) that does not fit an int64 (isInt) or float64, and returns its location.
func locateNumber(v any, path []string, isInt bool, ptr []string) []string {
	switch v := v.(type) {
	case []any:
		for i, e := range v {
			if p := locateNumber(e, path, isInt, append(ptr, strconv.Itoa(i))); p != nil {
				return p
			}
		}
	case map[string]any:
		if len(path) > 0 {
			if e, ok := v[path[0]]; ok {
				return locateNumber(e, path[1:], isInt, append(ptr, path[0]))
			}
			// The name of an embedded struct (Envelope in ReceivedMessage).
			return locateNumber(v, path[1:], isInt, ptr)
		}
	case json.Number:
		var err error
		if isInt {
			_, err = strconv.ParseInt(string(v), 10, 64)
		} else {
			_, err = strconv.ParseFloat(string(v), 64)
		}
		if len(path) == 0 && err != nil {
			return slices.Clone(ptr)
		}
	}
	return nil
}

// problem is one failing location of a validation.
type problem struct {
	ptr  []string // instance location
	text string   // what is wrong, free of data values beyond maxValueRunes
}

func (p problem) String() string {
	return jsonPointer(p.ptr) + ": " + p.text
}

// schemaProblems flattens a validation error into its failing locations, sorted and
// without duplicates. prefix is put before every pointer (e.g. "messages", "3").
func schemaProblems(err error, prefix ...string) []problem {
	ve, ok := errors.AsType[*jsonschema.ValidationError](err)
	if !ok {
		return []problem{{ptr: prefix, text: "invalid"}}
	}
	var ps []problem
	collectProblems(ve, &ps)
	for i := range ps {
		ps[i].ptr = append(slices.Clip(prefix), ps[i].ptr...)
	}
	slices.SortFunc(ps, func(a, b problem) int {
		if c := comparePointers(a.ptr, b.ptr); c != 0 {
			return c
		}
		return strings.Compare(a.text, b.text)
	})
	return slices.CompactFunc(ps, func(a, b problem) bool { return a.String() == b.String() })
}

// comparePointers orders instance locations, array indexes numerically.
func comparePointers(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		x, errX := strconv.Atoi(a[i])
		y, errY := strconv.Atoi(b[i])
		if errX == nil && errY == nil {
			return x - y
		}
		return strings.Compare(a[i], b[i])
	}
	return len(a) - len(b)
}

func collectProblems(ve *jsonschema.ValidationError, ps *[]problem) {
	switch ve.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		// One problem for the alternatives, naming what each lacks.
		var alts []problem
		for _, c := range ve.Causes {
			collectProblems(c, &alts)
		}
		var texts []string
		for _, a := range alts {
			t := a.text
			if len(a.ptr) > len(ve.InstanceLocation) {
				t = jsonPointer(a.ptr[len(ve.InstanceLocation):]) + ": " + t
			}
			if !slices.Contains(texts, t) {
				texts = append(texts, t)
			}
		}
		text := "matches none of the alternatives"
		if len(texts) > 0 && len(texts) <= maxProblems {
			text += " (" + strings.Join(texts, "; or ") + ")"
		}
		*ps = append(*ps, problem{ptr: ve.InstanceLocation, text: text})
		return
	}
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collectProblems(c, ps)
		}
		return
	}
	*ps = append(*ps, problem{ptr: ve.InstanceLocation, text: problemText(ve.ErrorKind)})
}

// problemText says what is wrong without repeating the failing value (it may be patient
// data): only types, lengths, counts and values from the schema itself are named.
func problemText(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return "got " + k.Got + ", want " + strings.Join(k.Want, " or ")
	case *kind.Enum:
		want := make([]string, 0, len(k.Want))
		for _, w := range k.Want {
			want = append(want, displaySchemaValue(w))
		}
		return "value must be one of " + strings.Join(want, ", ")
	case *kind.Const:
		return "value must be " + displaySchemaValue(k.Want)
	case *kind.Format:
		return "not a valid " + k.Want
	case *kind.Pattern:
		return "does not match pattern " + k.Want
	case *kind.Required:
		names := make([]string, 0, len(k.Missing))
		for _, m := range k.Missing {
			names = append(names, strconv.Quote(m))
		}
		if len(names) == 1 {
			return "missing property " + names[0]
		}
		return "missing properties " + strings.Join(names, ", ")
	case *kind.FalseSchema:
		return "property not allowed"
	case *kind.AdditionalProperties:
		names := make([]string, 0, maxProblems)
		for i, p := range k.Properties {
			if i == maxProblems {
				names = append(names, "…")
				break
			}
			names = append(names, quoteClipped(p))
		}
		return "properties not allowed: " + strings.Join(names, ", ")
	case *kind.MinLength:
		return fmt.Sprintf("length %d, want at least %d", k.Got, k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("length %d, want at most %d", k.Got, k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("%d items, want at least %d", k.Got, k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("%d items, want at most %d", k.Got, k.Want)
	case *kind.MinProperties:
		return fmt.Sprintf("%d properties, want at least %d", k.Got, k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("%d properties, want at most %d", k.Got, k.Want)
	case *kind.Minimum:
		return "must be ≥ " + ratText(k.Want)
	case *kind.Maximum:
		return "must be ≤ " + ratText(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be > " + ratText(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be < " + ratText(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + ratText(k.Want)
	}
	if kw := k.KeywordPath(); len(kw) > 0 {
		return "fails " + kw[0]
	}
	return "invalid"
}

func ratText(r *big.Rat) string {
	if r.IsInt() {
		return r.RatString()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// displaySchemaValue shows a value from a schema (enum, const).
func displaySchemaValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case map[string]any, []any:
		return "the value given in the schema"
	default:
		return fmt.Sprint(v)
	}
}

// describeProblems joins the first maxProblems problems for an *Error's Message.
func describeProblems(ps ...problem) string {
	var b strings.Builder
	for i, p := range ps {
		if i == maxProblems {
			fmt.Fprintf(&b, " (and %d more)", len(ps)-maxProblems)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// jsonPointer formats an instance location as an RFC 6901 JSON pointer. Tokens come from
// the data (property names), so each is cut to maxValueRunes and stripped of control
// characters.
func jsonPointer(tokens []string) string {
	if len(tokens) == 0 {
		return "(root)"
	}
	var b strings.Builder
	for _, t := range tokens {
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
		b.WriteByte('/')
		b.WriteString(clipRunes(t, maxValueRunes))
	}
	return b.String()
}

// quoteClipped quotes a value from the data for an error message, cut to maxValueRunes.
func quoteClipped(s string) string {
	return strconv.Quote(clipRunes(s, maxValueRunes))
}

// clipRunes cuts s to n runes (adding "…"), replacing control and invalid characters by
// "?".
func clipRunes(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if count == n {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			r = '?'
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}

// jsonErrorText describes a JSON syntax error by position only.
func jsonErrorText(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON input"
	}
	if strings.Contains(err.Error(), "after top-level value") {
		return "data after the top-level value"
	}
	return "invalid JSON"
}
