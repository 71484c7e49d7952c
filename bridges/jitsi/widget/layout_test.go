package widget

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const ours = `{"container":"top","index":0,"width":100,"height":40}`

func TestPinLayout(t *testing.T) {
	tests := []struct {
		name, existing, want string
	}{
		{"none", ``, `{"widgets":{"w1":` + ours + `}}`},
		{"null", `null`, `{"widgets":{"w1":` + ours + `}}`},
		{"empty object", `{}`, `{"widgets":{"w1":` + ours + `}}`},
		{"other widgets and fields kept",
			`{"widgets":{"other":{"container":"right"},"x":{"container":"top","index":1,"width":33.3,"height":20,"extra":[1]}},"future":{"a":1}}`,
			`{"future":{"a":1},"widgets":{"other":{"container":"right"},"w1":` + ours + `,"x":{"container":"top","index":1,"width":33.3,"height":20,"extra":[1]}}}`},
		{"our entry updated, its unknown fields kept",
			`{"widgets":{"w1":{"container":"right","width":10,"custom":"x"}}}`,
			`{"widgets":{"w1":{"container":"top","custom":"x","height":40,"index":0,"width":100}}}`},
		{"our entry not an object", `{"widgets":{"w1":"junk"}}`, `{"widgets":{"w1":` + ours + `}}`},
		{"widgets not an object", `{"widgets":[1,2],"k":true}`, `{"k":true,"widgets":{"w1":` + ours + `}}`},
		{"widgets null", `{"widgets":null}`, `{"widgets":{"w1":` + ours + `}}`},
		{"content not an object", `[1]`, `{"widgets":{"w1":` + ours + `}}`},
		{"big numbers kept exactly", `{"widgets":{"o":{"index":12345678901234567890}}}`,
			`{"widgets":{"o":{"index":12345678901234567890},"w1":` + ours + `}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PinLayout(json.RawMessage(tt.existing), "w1")
			if err != nil {
				t.Fatal(err)
			}
			assertJSONEqual(t, got, tt.want)
		})
	}
}

func TestPinLayoutNotJSON(t *testing.T) {
	if _, err := PinLayout(json.RawMessage(`{"widgets":`), "w1"); !errors.Is(err, ErrBadLayout) {
		t.Errorf("err = %v, want ErrBadLayout", err)
	}
	if _, _, err := UnpinLayout(json.RawMessage(`nope`), "w1"); !errors.Is(err, ErrBadLayout) {
		t.Errorf("err = %v, want ErrBadLayout", err)
	}
}

func TestUnpinLayout(t *testing.T) {
	tests := []struct {
		name, existing, want string
		changed              bool
	}{
		{"none", ``, ``, false},
		{"not there", `{"widgets":{"o":{"container":"top"}}}`, `{"widgets":{"o":{"container":"top"}}}`, false},
		{"removed, rest kept", `{"widgets":{"o":{"container":"top"},"w1":` + ours + `},"f":1}`, `{"f":1,"widgets":{"o":{"container":"top"}}}`, true},
		{"last one removed", `{"widgets":{"w1":` + ours + `}}`, `{"widgets":{}}`, true},
		{"not an object", `"x"`, `"x"`, false},
		{"widgets not an object", `{"widgets":1}`, `{"widgets":1}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed, err := UnpinLayout(json.RawMessage(tt.existing), "w1")
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("got %s, want nothing", got)
				}
				return
			}
			assertJSONEqual(t, got, tt.want)
		})
	}
}

func TestPinUnpinRoundTrip(t *testing.T) {
	const before = `{"widgets":{"o":{"container":"right"}},"f":"x"}`
	pinned, err := PinLayout(json.RawMessage(before), "w1")
	if err != nil {
		t.Fatal(err)
	}
	after, changed, err := UnpinLayout(pinned, "w1")
	if err != nil || !changed {
		t.Fatalf("UnpinLayout: changed %v, err %v", changed, err)
	}
	assertJSONEqual(t, after, before)
}

func assertJSONEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	dg := json.NewDecoder(bytes.NewReader(got))
	dg.UseNumber()
	dw := json.NewDecoder(strings.NewReader(want))
	dw.UseNumber()
	if err := dg.Decode(&g); err != nil {
		t.Fatalf("result %s is not JSON: %v", got, err)
	}
	if err := dw.Decode(&w); err != nil {
		t.Fatalf("bad test: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
