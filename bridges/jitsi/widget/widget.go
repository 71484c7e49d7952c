// Package widget builds the Matrix room state that makes Element show a Jitsi meeting: the
// widget state event (type [EventType], state key = widget ID) with the same content Element
// Web writes when a user starts a Jitsi call, the room's widget layout (type
// [LayoutEventType]) that pins it above the timeline, and the conference names that tie a
// Jitsi room to a Matrix room.
//
// The content mirrors element-hq/element-web: WidgetUtils.addJitsiWidget and
// WidgetUtils.setRoomWidget (the event), WidgetUtils.getLocalJitsiWrapperUrl (the wrapper
// URL and its "$" templates, which the client fills in when it renders the widget),
// WidgetType.JITSI (whose legacy name "jitsi" is what Element writes) and
// WidgetLayoutStore (the layout event). Element's wrapper page (src/vector/jitsi/index.ts)
// reads the parameters back from the URL's fragment.
//
// The package does no I/O and knows nothing of the appservice; it can be used alone.
package widget

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// Event types and values Element uses.
const (
	// EventType is the (legacy, still the only one Element writes) room widget state event.
	EventType = "im.vector.modular.widgets"
	// LayoutEventType is Element's room widget layout state event (state key "").
	LayoutEventType = "io.element.widgets.layout"
	// TypeJitsi is the widget type Element writes for Jitsi widgets (WidgetType.JITSI.legacy).
	TypeJitsi = "jitsi"
	// AuthOpenIDJWT is the auth mode of prosody-mod-auth-matrix-user-verification: the wrapper
	// asks the client for an OpenID token and hands it to Jitsi inside a JWT.
	AuthOpenIDJWT = "openidtoken-jwt"
	// DefaultWrapperURL is Element's hosted Jitsi wrapper, the one Element itself puts into
	// widget events when it does not run on https.
	DefaultWrapperURL = "https://app.element.io/jitsi.html"
	// DefaultName is the widget name Element gives a Jitsi call started from the room header.
	DefaultName = "Jitsi"
)

// Data is the widget's "data" object. The client substitutes its fields into the "$name"
// templates of the URL.
type Data struct {
	ConferenceID   string `json:"conferenceId"`
	RoomName       string `json:"roomName"`
	IsAudioOnly    bool   `json:"isAudioOnly"`
	IsVideoChannel bool   `json:"isVideoChannel"`
	Domain         string `json:"domain"`
	Auth           string `json:"auth,omitempty"`
}

// Content is the content of an [EventType] state event describing a Jitsi widget. The empty
// object (not a zero Content) removes a widget.
type Content struct {
	Type      string `json:"type"`
	URL       string `json:"url"`
	Name      string `json:"name"`
	Data      Data   `json:"data"`
	AvatarURL string `json:"avatar_url,omitempty"`
}

// Options describe a Jitsi widget. Domain is required.
type Options struct {
	Domain       string // Jitsi domain the wrapper connects to, e.g. "meet.example.org"
	ConferenceID string // Jitsi room name; "" = a random one as Element makes without auth (see [ConferenceForUVS] for auth openidtoken-jwt)
	RoomName     string // Matrix room name, shown by Jitsi as the meeting subject
	Name         string // widget name; "" = [DefaultName]
	Auth         string // "" or [AuthOpenIDJWT]
	WrapperURL   string // the wrapper page; "" = [DefaultWrapperURL]
	AudioOnly    bool   // start without video
}

// New returns the widget content Element Web would write for o.
func New(o Options) Content {
	if o.ConferenceID == "" {
		o.ConferenceID = randomConference()
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	return Content{
		Type: TypeJitsi,
		URL:  WrapperURL(o.WrapperURL, o.ConferenceID, o.Auth),
		Name: o.Name,
		Data: Data{
			ConferenceID: o.ConferenceID,
			RoomName:     o.RoomName,
			IsAudioOnly:  o.AudioOnly,
			Domain:       o.Domain,
			Auth:         o.Auth,
		},
	}
}

// wrapperParams is the fragment of Element's wrapper URL, in Element's order; the "$"
// templates are filled in by the client that renders the widget.
var wrapperParams = []string{
	"conferenceDomain=$domain",
	"conferenceId=$conferenceId",
	"isAudioOnly=$isAudioOnly",
	"startWithAudioMuted=$startWithAudioMuted",
	"startWithVideoMuted=$startWithVideoMuted",
	"isVideoChannel=$isVideoChannel",
	"displayName=$matrix_display_name",
	"avatarUrl=$matrix_avatar_url",
	"userId=$matrix_user_id",
	"roomId=$matrix_room_id",
	"theme=$theme",
	"roomName=$roomName",
	"supportsScreensharing=true",
	"language=$org.matrix.msc2873.client_language",
}

// WrapperURL returns the widget URL Element writes: the wrapper page base ("" =
// [DefaultWrapperURL]; a query or fragment of base is dropped) with the query
// "confId=<conferenceID>" and the parameter templates in the fragment, plus "auth=<auth>"
// when auth is set.
func WrapperURL(base, conferenceID, auth string) string {
	if base == "" {
		base = DefaultWrapperURL
	}
	base, _, _ = strings.Cut(base, "#")
	base, _, _ = strings.Cut(base, "?")
	var b strings.Builder
	b.WriteString(base)
	b.WriteString("?confId=")
	b.WriteString(formEscape(conferenceID))
	b.WriteByte('#')
	b.WriteString(strings.Join(wrapperParams, "&"))
	if auth != "" {
		b.WriteString("&auth=")
		b.WriteString(fragmentEscape(auth))
	}
	return b.String()
}

// formEscape encodes s as a browser's URLSearchParams does (application/x-www-form-urlencoded).
func formEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '*', c == '-', c == '.', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// fragmentEscape percent-encodes what a browser's URL parser encodes in a fragment
// (controls, space, '"', '<', '>', '`' and non-ASCII bytes).
func fragmentEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '`' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

const (
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower  = "abcdefghijklmnopqrstuvwxyz"
	digits = "0123456789"
)

// NewWidgetID returns a new widget ID: 24 random ASCII letters and digits, the alphabet and
// length of Element's randomString(24).
func NewWidgetID() string {
	return randomFrom(24, upper+lower+digits)
}

// randomConference is Element's conference ID without auth: "Jitsi", one upper-case and 23
// lower-case letters.
func randomConference() string {
	return "Jitsi" + randomFrom(1, upper) + randomFrom(23, lower)
}

func randomFrom(n int, alphabet string) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("widget: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}
