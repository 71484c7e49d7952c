package widget

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrBadLayout means the existing layout content is not JSON.
var ErrBadLayout = errors.New("widget: layout content is not valid JSON")

// pinned is our widget's entry in the layout: Element's top container (the app drawer above
// the timeline), leftmost, full width, 40% of the height.
var pinned = map[string]any{"container": "top", "index": 0, "width": 100, "height": 40}

// PinLayout returns the content of a [LayoutEventType] event that pins widgetID: the
// existing content (empty or null for none) with its "widgets" entry for widgetID set to
// container "top", index 0, width 100, height 40. Other widgets' entries, other fields of the
// content and unknown fields of our entry are kept. Content Element could not read as a layout
// (not an object, or "widgets" not an object) is replaced. ErrBadLayout when existing is
// not JSON.
func PinLayout(existing json.RawMessage, widgetID string) (json.RawMessage, error) {
	top, widgets, err := parseLayout(existing)
	if err != nil {
		return nil, err
	}
	if top == nil {
		top = map[string]json.RawMessage{}
	}
	if widgets == nil {
		widgets = map[string]json.RawMessage{}
	}
	var entry map[string]json.RawMessage
	if raw, ok := widgets[widgetID]; ok {
		_ = json.Unmarshal(raw, &entry) // not an object: replaced
	}
	if entry == nil {
		entry = map[string]json.RawMessage{}
	}
	for k, v := range pinned {
		entry[k] = mustJSON(v)
	}
	widgets[widgetID] = mustJSON(entry)
	top["widgets"] = mustJSON(widgets)
	return mustJSON(top), nil
}

// UnpinLayout returns the existing layout content without widgetID's entry, and whether
// there was one to remove (when not, existing is returned as it is). Everything else is
// kept. ErrBadLayout when existing is not JSON.
func UnpinLayout(existing json.RawMessage, widgetID string) (json.RawMessage, bool, error) {
	top, widgets, err := parseLayout(existing)
	if err != nil {
		return nil, false, err
	}
	if _, ok := widgets[widgetID]; !ok {
		return existing, false, nil
	}
	delete(widgets, widgetID)
	top["widgets"] = mustJSON(widgets)
	return mustJSON(top), true, nil
}

// parseLayout splits layout content into its top-level fields and its "widgets" map; either
// is nil when absent or not an object.
func parseLayout(existing json.RawMessage) (top, widgets map[string]json.RawMessage, err error) {
	if len(bytes.TrimSpace(existing)) == 0 {
		return nil, nil, nil
	}
	if !json.Valid(existing) {
		return nil, nil, ErrBadLayout
	}
	if json.Unmarshal(existing, &top) != nil {
		return nil, nil, nil // valid JSON, but not an object
	}
	if raw, ok := top["widgets"]; ok && json.Unmarshal(raw, &widgets) != nil {
		widgets = nil
	}
	return top, widgets, nil
}

// mustJSON marshals values that cannot fail to marshal (maps of valid raw JSON and numbers).
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("widget: marshalling layout: %v", err))
	}
	return b
}
