package ucri

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

// maxErrorBytes bounds the text of any error from untrusted input: errors name pointers
// and short cuts of values, never whole fields.
const maxErrorBytes = 2000

func FuzzDecodeReceiveResponse(f *testing.F) {
	f.Add(apiExample(f, "receiverResponse"))
	f.Add(batch(receivedJSON(1), receivedJSON(2, "messageId", `"x"`), receivedJSON(3, "timeout", "5")))
	f.Add(batch(receivedJSON(1, "sequenceId", `"1"`)))
	f.Add([]byte(`{"maxMessages":1,"messages":[7]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"maxMessages":1,"messages":[` + receivedJSON(1) + `],"MESSAGES":[1,2]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, rejects, err := DecodeReceiveResponse(body)
		if err != nil {
			if r != nil || rejects != nil {
				t.Fatal("results with a batch error")
			}
			ue, ok := errors.AsType[*Error](err)
			if !ok || ue.Code != CodeInvalidTransport || len(ue.Error()) > maxErrorBytes {
				t.Fatalf("batch error %v", err)
			}
			return
		}
		var doc map[string]json.RawMessage // exact keys, unlike a struct
		var items []json.RawMessage
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("accepted a body encoding/json can't read: %v", err)
		}
		if err := json.Unmarshal(doc["messages"], &items); err != nil {
			t.Fatalf("accepted messages encoding/json can't read: %v", err)
		}
		if len(r.Messages)+len(rejects) != len(items) || r.MaxMessages < 1 {
			t.Fatalf("%d good + %d rejected of %d messages, maxMessages %d", len(r.Messages), len(rejects), len(items), r.MaxMessages)
		}
		for _, m := range r.Messages {
			if err := m.Check(); err != nil {
				t.Fatalf("accepted message fails Check: %v", err)
			}
		}
		for _, rj := range rejects {
			if !IsOID(rj.Destination) || rj.SequenceID < 0 || (rj.MessageID != "" && !IsUUID(rj.MessageID)) ||
				rj.Err == nil || len(rj.Error()) > maxErrorBytes {
				t.Fatalf("reject %+v", rj)
			}
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	for _, m := range allMessages {
		for _, ex := range schemaExamples(f, m.app, m.schema) {
			f.Add(m.app, m.schema, string(ex))
		}
	}
	f.Add(AppIncidentWithPatient, SchemaIncident, `{"patients":[{"initialAssessment":{"additionalInformation":""}}]}`)
	f.Add(AppTransport, SchemaDeliveryStatus, `{"refMessageId":"1","destination":"1","statusCode":200.0,"cause":{"code":1e30,"reason":""}}`)
	f.Add(AppTransport, SchemaDeliveryStatus, `{"refMessageId":"1","destination":"1","statusCode":1e999999999}`) // once took the validator seconds
	f.Add(AppIncidentWithPatient, SchemaIncident, `{"patients":[{"name":"X","age":1e400}]}`)
	f.Add("x", "y", "{")
	f.Fuzz(func(t *testing.T, appID, schemaID, data string) {
		m, err := DecodePayload(Payload{AppID: appID, AppVersion: AppVersion, SchemaID: schemaID, ContentType: ContentTypeJSON, Data: data})
		if err != nil {
			ue, ok := errors.AsType[*Error](err)
			if !ok || len(ue.Error()) > maxErrorBytes {
				t.Fatalf("error %v", err)
			}
			switch ue.Code {
			case CodeUnknownAppID, CodeUnknownAppVersion, CodeUnknownSchemaID, CodeInvalidPayload, CodeInvalidJSON:
			default:
				t.Fatalf("error code %d: %v", ue.Code, ue)
			}
			return
		}
		if a, s := m.Kind(); a != appID || s != schemaID {
			t.Fatalf("decoded %s/%s as %s/%s", appID, schemaID, a, s)
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		if err := ValidateData(appID, AppVersion, schemaID, out, false); err != nil {
			t.Fatalf("accepted message encodes invalid: %v\n in: %s\nout: %s", err, data, out)
		}
	})
}

func FuzzVerify(f *testing.F) {
	env := testEnvelope()
	if err := Sign(env, "1.2.3.4.5.7", testKey()); err != nil {
		f.Fatal(err)
	}
	valid := env.Signature
	other := *env
	if err := Sign(&other, "1.2.3.4.5.8", testKey()); err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(other.Signature)
	f.Add(string(apiExample(f, "senderResponse")))
	var ex SendRequest
	_ = json.Unmarshal(apiExample(f, "senderRequest"), &ex)
	f.Add(ex.Signature)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzI1NiIsInR5cCI6IlVDUklfUExBSU4ifQ..")
	f.Fuzz(func(t *testing.T, sig string) {
		e := *env
		e.Signature = sig
		err := Verify(&e, "1.2.3.4.5.7", &testKey().PublicKey)
		if sig == valid {
			if err != nil {
				t.Fatalf("valid signature rejected: %v", err)
			}
			return
		}
		ue, ok := errors.AsType[*Error](err)
		if !ok || ue.Code != CodeWrongSignature || len(ue.Error()) > maxErrorBytes {
			t.Fatalf("Verify(%s) = %v", strconv.Quote(sig), err)
		}
	})
}
