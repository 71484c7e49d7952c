package ucri

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri/spec"
)

// testKey is a 2048-bit RSA key generated once per test binary.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// otherTestKey is a second key, for signatures by the wrong sender.
var otherTestKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// schemaExamples returns the "examples" of an official app schema.
func schemaExamples(tb testing.TB, appID, schemaID string) []json.RawMessage {
	tb.Helper()
	b, err := spec.FS.ReadFile(spec.AppSchema(appID, AppVersion, schemaID))
	if err != nil {
		tb.Fatal(err)
	}
	var s struct{ Examples []json.RawMessage }
	if err := json.Unmarshal(b, &s); err != nil {
		tb.Fatal(err)
	}
	if len(s.Examples) == 0 {
		tb.Fatalf("%s/%s has no examples", appID, schemaID)
	}
	return s.Examples
}

// allMessages lists the five app messages with their official app and schema ids.
var allMessages = []struct {
	app, schema string
	msg         Message
}{
	{AppIncidentWithPatient, SchemaIncident, &Incident{}},
	{AppIncidentWithPatient, SchemaAcknowledgement, &Acknowledgement{}},
	{AppIncidentWithPatient, SchemaCompletion, &Completion{}},
	{AppTransport, SchemaDeliveryStatus, &DeliveryStatus{}},
	{AppTransport, SchemaAvailability, &AvailabilityUpdate{}},
}

func TestMessageKinds(t *testing.T) {
	for _, m := range allMessages {
		t.Run(m.schema, func(t *testing.T) {
			app, schema := m.msg.Kind()
			if app != m.app || schema != m.schema {
				t.Errorf("Kind() = %s, %s; want %s, %s", app, schema, m.app, m.schema)
			}
			if _, err := spec.FS.Open(spec.AppSchema(app, AppVersion, schema)); err != nil {
				t.Errorf("no official schema for %s/%s: %v", app, schema, err)
			}
			if got := reflect.TypeOf(newMessage(app, schema)); got != reflect.TypeOf(m.msg) {
				t.Errorf("newMessage = %v, want %T", got, m.msg)
			}
		})
	}
}

// TestOfficialExamplesRoundTrip decodes every official example into the Go types, with
// unknown fields disallowed, and encodes it again: the JSON must be the same, which shows
// that the JSON tags match the schemas.
func TestOfficialExamplesRoundTrip(t *testing.T) {
	for _, m := range allMessages {
		for i, ex := range schemaExamples(t, m.app, m.schema) {
			t.Run(m.schema, func(t *testing.T) {
				v := reflect.New(reflect.TypeOf(m.msg).Elem()).Interface()
				dec := json.NewDecoder(bytes.NewReader(ex))
				dec.DisallowUnknownFields()
				if err := dec.Decode(v); err != nil {
					t.Fatalf("example %d: %v", i, err)
				}
				out, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				var want, got any
				_ = json.Unmarshal(ex, &want)
				_ = json.Unmarshal(out, &got)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("example %d changed in a round trip:\n got %s\nwant %s", i, out, ex)
				}
			})
		}
	}
}

func TestIncidentExampleFields(t *testing.T) {
	var in Incident
	if err := json.Unmarshal(schemaExamples(t, AppIncidentWithPatient, SchemaIncident)[0], &in); err != nil {
		t.Fatal(err)
	}
	p := in.Patients[0]
	switch {
	case in.FlashingLights == nil || !*in.FlashingLights:
		t.Error("flashingLights not true")
	case in.MissionLocation.Coordinate == nil || in.MissionLocation.Coordinate.Lat != 65.453323:
		t.Errorf("coordinate = %+v", in.MissionLocation.Coordinate)
	case p.Name != "Mustermann" || p.Surname != "Hans" || p.Gender != GenderMale:
		t.Errorf("patient person = %+v", p.Person)
	case p.Age == nil || *p.Age != 55 || p.InfectionStatus == nil || !*p.InfectionStatus:
		t.Errorf("patient age/infection = %v/%v", p.Age, p.InfectionStatus)
	case p.HealthInsuranceInformation == nil || p.HealthInsuranceInformation.HealthInsuranceCompanyNumber != "101234567":
		t.Errorf("health insurance = %+v", p.HealthInsuranceInformation)
	case p.InitialAssessment == nil || p.InitialAssessment.PZC != "360401":
		t.Errorf("initial assessment = %+v", p.InitialAssessment)
	case in.Informers[0].Email != "heike.musterfrau@example.com":
		t.Errorf("informers = %+v", in.Informers)
	}
}

func TestZeroValuesAreSent(t *testing.T) {
	no, zero := false, 0.0
	in := Incident{
		FlashingLights:  &no,
		MissionLocation: Location{Coordinate: &Coordinate{}},
		Patients:        []Patient{{Person: Person{Name: "X"}, Age: &zero, InfectionStatus: &no}},
		ProtocolRemarks: []Notification{{Silent: &no}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"flashingLights":false`, `"coordinate":{"lat":0,"lon":0}`, `"age":0`,
		`"infectionStatus":false`, `"silent":false`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var empty Incident
	b, _ = json.Marshal(empty)
	for _, absent := range []string{"flashingLights", "informers", "internalId", "coordinate"} {
		if strings.Contains(string(b), absent) {
			t.Errorf("zero incident has %s: %s", absent, b)
		}
	}
}

// fullIncident sets every field of an incident.
func fullIncident() *Incident {
	yes, age := true, 42.0
	addr := &Address{Street: "Musterstraße", HouseNumber: "1a", PostalCode: "12345", City: "Berlin",
		CityDistrict: "Mitte", State: "Berlin", Country: "DE", AdditionalInformation: "Hinterhaus"}
	return &Incident{
		SharedIncidentID:      DerivedMessageID("incident", "1"),
		InternalID:            "E-1",
		AdditionalInformation: "Zugang über Hof <Tor 2> & Treppe",
		SentByDispatcherAt:    FormatTime(time.Date(2024, 1, 1, 10, 5, 8, 0, time.UTC)),
		Informers:             []Person{{Name: "Musterfrau", Surname: "Heike", Phone: "+49 30 1", Email: "h@example.com", Address: addr, AdditionalInformation: "Nachbarin"}},
		ProtocolRemarks:       []Notification{{Timestamp: "2024-01-01T10:06:09Z", Message: "NEF nachalarmiert", Category: "information", Silent: &yes}},
		StartTimestamp:        "2024-01-01T09:55:15Z",
		Classifications:       []string{"RD 1"},
		Issue:                 "Notfall",
		FlashingLights:        &yes,
		MissionLocation: Location{
			Coordinate: &Coordinate{Lat: 52.52, Lon: 13.405}, Address: addr,
			Object: &MissionObject{Name: "Haus 3", AdditionalInformation: "Campus"}, SuperiorObject: &MissionObject{Name: "Klinikum"},
			Floor: "3. OG", Room: "412", AdditionalInformation: "Aufzug defekt",
		},
		Patients: []Patient{{
			Person:                     Person{Name: "Mustermann", Surname: "Hans", Phone: "+49 30 2", Email: "m@example.com", Address: addr, AdditionalInformation: "Diabetiker"},
			Gender:                     GenderDiverse,
			DateOfBirth:                "1980-12-30",
			Age:                        &age,
			HealthInsuranceInformation: &HealthInsurance{HealthInsuranceCompany: "Musterkasse", HealthInsuranceCompanyNumber: "101234567", InsuranceNumber: "S123456789"},
			InitialAssessment:          &InitialAssessment{RMI: "360", RMC: "3605", PZC: "360401", AdditionalInformation: "unspezifisch"},
			InfectionInformation:       "keine",
			InfectionStatus:            new(bool),
			TransportNumber:            "T-9",
		}},
	}
}

func TestNewPayloadDecodePayloadRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
	}{
		{"incident", fullIncident()},
		{"incident minimal", &Incident{SharedIncidentID: NewMessageID(), SentByDispatcherAt: "2024-01-01T10:05:08Z",
			MissionLocation: Location{Coordinate: &Coordinate{}}, Patients: []Patient{{Person: Person{Name: "Unbekannt"}}}}},
		{"acknowledgement", &Acknowledgement{SharedIncidentID: NewMessageID(), AcknowledgedByDispatcherAt: "2024-01-01T10:06:09Z", Status: AckAccepted}},
		{"acknowledgement rejected", &Acknowledgement{SharedIncidentID: NewMessageID(), AcknowledgedByDispatcherAt: "2024-01-01T10:06:09Z", Status: AckRejected, Cause: "Einsatzort unbekannt"}},
		{"completion", &Completion{SharedIncidentID: NewMessageID(), CompletedAt: "2024-01-01T10:15:09Z", Status: CompletedSuccessfully}},
		{"completion aborted", &Completion{SharedIncidentID: NewMessageID(), CompletedAt: "2024-01-01T10:15:09Z", Status: Aborted, AdditionalInformation: "niemand angetroffen"}},
		{"delivery status", &DeliveryStatus{RefMessageID: NewMessageID(), Destination: "1.2.3", StatusCode: DeliveryOK}},
		{"delivery status with cause", &DeliveryStatus{RefMessageID: NewMessageID(), Destination: "1.2.3", StatusCode: DeliveryRemoteError,
			Cause: &Error{Code: CodeWrongSignature, Reason: "wrong signature", Message: "digest"}, StatusMessage: "abgelehnt"}},
		{"availability", &AvailabilityUpdate{ID: "1.2.3.4", Status: StatusOffline}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPayload(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			app, schema := tt.msg.Kind()
			if p.AppID != app || p.SchemaID != schema || p.AppVersion != AppVersion || p.ContentType != ContentTypeJSON {
				t.Errorf("payload meta = %+v", p)
			}
			got, err := DecodePayload(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tt.msg)
			}
		})
	}
}

func TestNewPayloadKeepsHTMLCharacters(t *testing.T) {
	p, err := NewPayload(fullIncident())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Data, "<Tor 2> & Treppe") || strings.HasSuffix(p.Data, "\n") {
		t.Errorf("data = %s", p.Data)
	}
}

func TestDecodePayloadDropsEmptyAssessment(t *testing.T) {
	data := `{"sharedIncidentId":"550e8400-e29b-41d4-a716-446655440000","sentByDispatcherAt":"2024-01-01T10:05:08Z",` +
		`"missionLocation":{"address":{"street":"A"}},"patients":[{"name":"X","initialAssessment":{"additionalInformation":""}}]}`
	m, err := DecodePayload(Payload{AppID: AppIncidentWithPatient, AppVersion: AppVersion, SchemaID: SchemaIncident, ContentType: ContentTypeJSON, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if a := m.(*Incident).Patients[0].InitialAssessment; a != nil {
		t.Errorf("empty assessment kept: %+v", a)
	}
}

func TestIDs(t *testing.T) {
	id := NewMessageID()
	if !IsUUID(id) || id == NewMessageID() || id[14] != '4' {
		t.Errorf("NewMessageID = %s", id)
	}
	d := DerivedMessageID("$event:example.org", "1.2.3")
	if d != DerivedMessageID("$event:example.org", "1.2.3") || !IsUUID(d) || d[14] != '5' {
		t.Errorf("DerivedMessageID = %s", d)
	}
	// Golden value: the namespace and the encoding of parts must never change, or messages
	// rebuilt after an upgrade would get new ids.
	if d != "ab7b209b-0f01-546a-8a7b-9d64f30b99d7" {
		t.Errorf("DerivedMessageID changed: %s", d)
	}
	if DerivedMessageID("ab", "c") == DerivedMessageID("a", "bc") {
		t.Error("DerivedMessageID is ambiguous")
	}
	if got := FormatTime(time.Date(2024, 1, 1, 11, 5, 8, 999, time.FixedZone("CET", 3600))); got != "2024-01-01T10:05:08Z" {
		t.Errorf("FormatTime = %s", got)
	}
	uuids := map[string]bool{
		"550e8400-e29b-41d4-a716-446655440000": true, "550E8400-E29B-41D4-A716-446655440000": true,
		"": false, "550e8400e29b41d4a716446655440000": false, "{550e8400-e29b-41d4-a716-446655440000}": false,
		"urn:uuid:550e8400-e29b-41d4-a716-446655440000": false, "550e8400-e29b-41d4-a716-44665544000g": false,
		"550e8400-e29b-41d4a-716-446655440000": false,
	}
	for s, want := range uuids {
		if IsUUID(s) != want {
			t.Errorf("IsUUID(%q) = %v", s, !want)
		}
	}
	oids := map[string]bool{
		"1.2.3.4.5.6.7": true, "1": true, "1.2.": true, "1.2.3.1.276.5.1.58.28.2.1": true,
		"": false, ".1": false, "1..2": false, "1.a": false, "1 .2": false, "١.٢": false,
	}
	for s, want := range oids {
		if IsOID(s) != want {
			t.Errorf("IsOID(%q) = %v", s, !want)
		}
	}
}
