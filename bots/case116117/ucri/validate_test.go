package ucri

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// wantCode asserts that err is an *Error with code (0: err is nil) and, if msg is not
// empty, a Message containing msg.
func wantCode(t *testing.T, err error, code int, msg string) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	ue, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("error = %v (%T), want *Error %d", err, err, code)
	}
	if ue.Code != code {
		t.Fatalf("code = %d (%v), want %d", ue.Code, ue, code)
	}
	if msg != "" && !strings.Contains(ue.Message, msg) {
		t.Fatalf("message = %q, want it to contain %q", ue.Message, msg)
	}
}

// TestValidateOfficialExamples validates the examples of the official schemas in both
// modes. Two of them are not valid, which is asserted here so a change of the official
// files is noticed:
//   - the incident example has dateOfBirth "19801230", not an ISO 8601 date: it passes
//     non-strict validation (how Switchboard validates what it receives) and fails strict
//     validation (how it validates what it sends);
//   - the second message_delivery_status example has statusCode 500, which the schema's
//     enum (200, 502, 504) does not allow, in either mode.
func TestValidateOfficialExamples(t *testing.T) {
	tests := []struct {
		app, schema  string
		example      int
		loose, exact int    // expected codes, non-strict and strict
		msg          string // expected in the strict message
	}{
		{AppIncidentWithPatient, SchemaIncident, 0, 0, CodeInvalidPayload, "/patients/0/dateOfBirth: not a valid date"},
		{AppIncidentWithPatient, SchemaAcknowledgement, 0, 0, 0, ""},
		{AppIncidentWithPatient, SchemaCompletion, 0, 0, 0, ""},
		{AppTransport, SchemaDeliveryStatus, 0, 0, 0, ""},
		{AppTransport, SchemaDeliveryStatus, 1, CodeInvalidPayload, CodeInvalidPayload, "/statusCode: value must be one of 200, 502, 504"},
		{AppTransport, SchemaDeliveryStatus, 2, 0, 0, ""},
		{AppTransport, SchemaAvailability, 0, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			ex := schemaExamples(t, tt.app, tt.schema)[tt.example]
			wantCode(t, ValidateData(tt.app, AppVersion, tt.schema, ex, false), tt.loose, tt.msg)
			wantCode(t, ValidateData(tt.app, AppVersion, tt.schema, ex, true), tt.exact, tt.msg)
		})
	}
}

func TestValidateDataErrors(t *testing.T) {
	long := strings.Repeat("Geheim", 50)
	const ack = `{"sharedIncidentId":"550e8400-e29b-41d4-a716-446655440000","acknowledgedByDispatcherAt":"2024-01-01T10:06:09Z","status":"accepted"}`
	incident := func(patient string) string {
		return `{"sharedIncidentId":"550e8400-e29b-41d4-a716-446655440000","sentByDispatcherAt":"2024-01-01T10:05:08Z",` +
			`"missionLocation":{"coordinate":{"lat":0,"lon":0}},"patients":[` + patient + `]}`
	}
	tests := []struct {
		name              string
		app, version, sch string
		data              string
		strict            bool
		code              int
		msg               string
	}{
		{"valid", AppIncidentWithPatient, AppVersion, SchemaAcknowledgement, ack, true, 0, ""},
		{"unknown app", "incident_transfer", AppVersion, SchemaIncident, ack, false, CodeUnknownAppID, `appId "incident_transfer"`},
		{"path in app", "../api", AppVersion, SchemaIncident, ack, false, CodeUnknownAppID, ""},
		{"unknown version", AppIncidentWithPatient, "0.1", SchemaIncident, ack, false, CodeUnknownAppVersion, `"0.1"`},
		{"unknown schema", AppIncidentWithPatient, AppVersion, "transfer", ack, false, CodeUnknownSchemaID, `"transfer"`},
		{"schema of other app", AppTransport, AppVersion, SchemaIncident, ack, false, CodeUnknownSchemaID, ""},
		{"not JSON", AppIncidentWithPatient, AppVersion, SchemaAcknowledgement, `{"status":`, false, CodeInvalidJSON, "end of JSON"},
		{"trailing data", AppIncidentWithPatient, AppVersion, SchemaAcknowledgement, ack + ` {}`, false, CodeInvalidJSON, "after the top-level value"},
		{"array", AppIncidentWithPatient, AppVersion, SchemaAcknowledgement, `[]`, false, CodeInvalidJSON, ""},
		{"empty", AppIncidentWithPatient, AppVersion, SchemaAcknowledgement, ``, false, CodeInvalidJSON, ""},
		{"missing", AppIncidentWithPatient, AppVersion, SchemaAcknowledgement, `{}`, false, CodeInvalidPayload,
			`(root): missing properties "sharedIncidentId", "acknowledgedByDispatcherAt", "status"`},
		{"enum", AppIncidentWithPatient, AppVersion, SchemaIncident, incident(`{"name":"X","gender":"m"}`), false, CodeInvalidPayload,
			`/patients/0/gender: value must be one of "Male", "Female", "Diverse"`},
		{"unknown property", AppIncidentWithPatient, AppVersion, SchemaIncident, incident(`{"name":"X","nickname":"Y"}`), false, CodeInvalidPayload,
			`/patients/0/nickname: property not allowed`},
		{"type", AppIncidentWithPatient, AppVersion, SchemaIncident, incident(`{"name":1}`), false, CodeInvalidPayload,
			`/patients/0/name: got number, want string`},
		{"minimum", AppIncidentWithPatient, AppVersion, SchemaIncident, incident(`{"name":"X","age":-1}`), false, CodeInvalidPayload,
			`/patients/0/age: must be ≥ 0`},
		{"pattern", AppIncidentWithPatient, AppVersion, SchemaIncident, incident(`{"name":"X","address":{"street":"A","postalCode":"` + long + `"}}`), false, CodeInvalidPayload,
			`/patients/0/address/postalCode: does not match pattern ^[0-9]+$`},
		{"length", AppIncidentWithPatient, AppVersion, SchemaIncident, incident(`{"name":"X","initialAssessment":{"rmi":"12"}}`), false, CodeInvalidPayload,
			`/patients/0/initialAssessment/rmi: length 2, want at least 3`},
		{"min properties", AppIncidentWithPatient, AppVersion, SchemaIncident, incident(`{"name":"X","initialAssessment":{}}`), false, CodeInvalidPayload,
			`/patients/0/initialAssessment: 0 properties, want at least 1`},
		{"min items", AppIncidentWithPatient, AppVersion, SchemaIncident, incident(``), false, CodeInvalidPayload,
			`/patients: 0 items, want at least 1`},
		{"location needs coordinate or address", AppIncidentWithPatient, AppVersion, SchemaIncident,
			strings.Replace(incident(`{"name":"X"}`), `{"coordinate":{"lat":0,"lon":0}}`, `{"floor":"1"}`, 1), false, CodeInvalidPayload,
			`/missionLocation: matches none of the alternatives (missing property "coordinate"; or missing property "address")`},
		{"max length", AppTransport, AppVersion, SchemaDeliveryStatus, `{"refMessageId":"x","destination":"1.2","statusCode":200,"statusMessage":"` + long + `"}`, false, CodeInvalidPayload,
			`/statusMessage: length 300, want at most 100`},
		{"date-time without zone, non-strict", AppIncidentWithPatient, AppVersion, SchemaAcknowledgement,
			strings.Replace(ack, "10:06:09Z", "10:06:09", 1), false, 0, ""},
		{"date-time without zone, strict", AppIncidentWithPatient, AppVersion, SchemaAcknowledgement,
			strings.Replace(ack, "10:06:09Z", "10:06:09", 1), true, CodeInvalidPayload, "/acknowledgedByDispatcherAt: not a valid date-time"},
		{"uuid, strict", AppIncidentWithPatient, AppVersion, SchemaAcknowledgement,
			strings.Replace(ack, "550e8400", "x", 1), true, CodeInvalidPayload, "/sharedIncidentId: not a valid uuid"},
		{"huge exponent", AppTransport, AppVersion, SchemaDeliveryStatus, `{"refMessageId":"x","destination":"1","statusCode":1e999999999}`, false, CodeInvalidPayload,
			"/statusCode: number out of range"},
		{"long number", AppIncidentWithPatient, AppVersion, SchemaIncident, incident(`{"name":"X","age":` + strings.Repeat("9", 100) + `}`), false, CodeInvalidPayload,
			"/patients/0/age: number too long"},
		{"three problems at most", AppIncidentWithPatient, AppVersion, SchemaIncident,
			incident(`{"name":1,"surname":2,"phone":3,"email":4,"gender":5}`), false, CodeInvalidPayload, "(and 2 more)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateData(tt.app, tt.version, tt.sch, []byte(tt.data), tt.strict)
			wantCode(t, err, tt.code, tt.msg)
			if err != nil && strings.Contains(err.Error(), "GeheimGeheim") {
				t.Errorf("error echoes the data: %v", err)
			}
		})
	}
}

func TestErrorMessagesClipDataValues(t *testing.T) {
	long := strings.Repeat("x", 500)
	err := ValidateData(AppTransport, AppVersion, SchemaAvailability,
		[]byte(`{"id":"1","status":"online","`+long+`":1}`), false)
	wantCode(t, err, CodeInvalidPayload, "/"+strings.Repeat("x", maxValueRunes)+"…: property not allowed")
	if len(err.Error()) > 200 {
		t.Errorf("error is %d bytes long: %v", len(err.Error()), err)
	}
	err = ValidateData(strings.Repeat("a", 500)+"\n", AppVersion, SchemaAvailability, []byte(`{}`), false)
	if len(err.Error()) > 100 || strings.Contains(err.Error(), "\n") {
		t.Errorf("unknown appId is not clipped: %v", err)
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	ok := `{"id":"1.2.3","status":"online"}`
	tests := []struct {
		name string
		p    Payload
		code int
		msg  string
	}{
		{"valid", Payload{AppTransport, AppVersion, SchemaAvailability, ContentTypeJSON, ok}, 0, ""},
		{"encrypted", Payload{AppTransport, AppVersion, SchemaAvailability, ContentTypeJOSE, "eyJ..."}, CodeUnsupportedApp, ""},
		{"content type", Payload{AppTransport, AppVersion, SchemaAvailability, "text/plain", ok}, CodeInvalidTransport, "/payload/contentType"},
		{"unknown app", Payload{"notification_text", AppVersion, "notification", ContentTypeJSON, ok}, CodeUnknownAppID, ""},
		{"invalid", Payload{AppTransport, AppVersion, SchemaAvailability, ContentTypeJSON, `{"id":"x","status":"online"}`}, CodeInvalidPayload, "/id: does not match pattern"},
		{"out of range", Payload{AppIncidentWithPatient, AppVersion, SchemaIncident, ContentTypeJSON,
			`{"sharedIncidentId":"550e8400-e29b-41d4-a716-446655440000","sentByDispatcherAt":"2024-01-01T10:05:08Z",` +
				`"missionLocation":{"address":{"street":"A"}},"patients":[{"name":"X"},{"name":"Y","age":1e400}]}`}, CodeInvalidPayload, "/patients/1/age: value out of range"},
		{"integer beyond int", Payload{AppTransport, AppVersion, SchemaDeliveryStatus, ContentTypeJSON,
			`{"refMessageId":"550e8400-e29b-41d4-a716-446655440000","destination":"1","statusCode":200,"cause":{"code":1e30,"reason":"x"}}`}, CodeInvalidPayload, "/cause/code: value out of range"},
		{"integer written as float", Payload{AppTransport, AppVersion, SchemaDeliveryStatus, ContentTypeJSON,
			`{"refMessageId":"550e8400-e29b-41d4-a716-446655440000","destination":"1","statusCode":200.0}`}, CodeInvalidPayload, "/statusCode: value out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodePayload(tt.p)
			wantCode(t, err, tt.code, tt.msg)
			if (m == nil) != (tt.code != 0) {
				t.Errorf("message = %v with error %v", m, err)
			}
		})
	}
}

func TestNewPayloadValidatesStrictly(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		code int
		msg2 string
	}{
		{"nil", nil, -1, ""},
		{"no patients", &Incident{SharedIncidentID: NewMessageID(), SentByDispatcherAt: "2024-01-01T10:05:08Z",
			MissionLocation: Location{Address: &Address{Street: "A"}}}, CodeInvalidPayload, "/patients: got null, want array"},
		{"date of birth", &Incident{SharedIncidentID: NewMessageID(), SentByDispatcherAt: "2024-01-01T10:05:08Z",
			MissionLocation: Location{Address: &Address{Street: "A"}}, Patients: []Patient{{Person: Person{Name: "X"}, DateOfBirth: "19801230"}}},
			CodeInvalidPayload, "/patients/0/dateOfBirth: not a valid date"},
		{"time without zone", &Completion{SharedIncidentID: NewMessageID(), CompletedAt: "2024-01-01T10:15:09", Status: Aborted},
			CodeInvalidPayload, "/completedAt: not a valid date-time"},
		{"status", &Acknowledgement{SharedIncidentID: NewMessageID(), AcknowledgedByDispatcherAt: "2024-01-01T10:06:09Z", Status: "ok"},
			CodeInvalidPayload, `/status: value must be one of "accepted", "rejected"`},
		{"empty assessment", &Incident{SharedIncidentID: NewMessageID(), SentByDispatcherAt: "2024-01-01T10:05:08Z",
			MissionLocation: Location{Address: &Address{Street: "A"}}, Patients: []Patient{{Person: Person{Name: "X"}, InitialAssessment: &InitialAssessment{}}}},
			CodeInvalidPayload, "/patients/0/initialAssessment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPayload(tt.msg)
			if tt.code == -1 {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			wantCode(t, err, tt.code, tt.msg2)
		})
	}
}

func TestValidateConcurrently(t *testing.T) {
	ex := schemaExamples(t, AppIncidentWithPatient, SchemaIncident)[0]
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if err := ValidateData(AppIncidentWithPatient, AppVersion, SchemaIncident, ex, i%2 == 0); (err == nil) != (i%2 == 1) {
				t.Errorf("strict=%v: %v", i%2 == 0, err)
			}
		})
	}
	wg.Wait()
}
