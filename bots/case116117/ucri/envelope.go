// Package ucri is the UCRI2 protocol as Switchboard's 116117 bot uses it, with no Matrix in
// it: the transport envelope and the UCRM Client API types, a client for that API (token,
// send, long-poll receive, commit, registry, info), the app messages of
// incident_transfer_with_patient 1.0 and transport_layer_messages 1.0 with validation
// against their official JSON schemas (package spec), and envelope signatures (JWS compact,
// RS256, over a canonical form of the envelope).
package ucri

import "strconv"

// App and schema identifiers of the apps the bot speaks.
const (
	AppIncidentWithPatient = "incident_transfer_with_patient"
	AppTransport           = "transport_layer_messages"
	AppVersion             = "1.0"

	SchemaIncident        = "incident"
	SchemaAcknowledgement = "acknowledgement"
	SchemaCompletion      = "completion"
	SchemaDeliveryStatus  = "message_delivery_status"
	SchemaAvailability    = "participant_availability_update"

	ContentTypeJSON = "application/json"
	ContentTypeJOSE = "application/jose"
)

// Ack values of an envelope: which technical acknowledgements (message_delivery_status)
// the sender wants.
const (
	AckNone = "NONE"
	AckNACK = "NACK"
	AckAll  = "ALL"
)

// Payload is an app message with its meta information (schema payload.yaml). Data is the
// app message's JSON text.
type Payload struct {
	AppID       string `json:"appId"`
	AppVersion  string `json:"appVersion"`
	SchemaID    string `json:"schemaId"`
	ContentType string `json:"contentType"`
	Data        string `json:"data"`
}

// Envelope is the transport envelope (schema envelope.yaml).
type Envelope struct {
	Description string   `json:"description,omitempty"`
	MessageID   string   `json:"messageId,omitempty"`
	SentDate    string   `json:"sentDate,omitempty"`
	Timeout     int      `json:"timeout,omitempty"`
	Ack         string   `json:"ack,omitempty"`
	Source      string   `json:"source"`
	Tags        []string `json:"tags,omitempty"`
	Payload     Payload  `json:"payload"`
	Signature   string   `json:"signature,omitempty"`
}

// SendRequest is the body of POST /messaging/send (schema senderRequest.yaml); the UCRM
// answers with the same shape, messageId, sentDate, timeout and ack filled in
// (senderResponse.yaml).
type SendRequest struct {
	Envelope
	Destinations []string `json:"destinations"`
}

// ReceivedMessage is one message of a receive answer (schema receiverResponseItem.yaml).
type ReceivedMessage struct {
	Envelope
	Destination string `json:"destination"`
	SequenceID  int64  `json:"sequenceId"`
}

// ReceiveRequest is the body of POST /messaging/receive (schema receiverRequest.yaml).
// MaxDelay is the long-poll time in seconds (0 to 30); nil means the UCRM's default, 30.
type ReceiveRequest struct {
	Destinations []string `json:"destinations"`
	MaxMessages  int      `json:"maxMessages,omitempty"`
	MaxDelay     *int     `json:"maxDelay,omitempty"`
}

// ReceiveResponse is the answer of POST /messaging/receive (schema receiverResponse.yaml).
type ReceiveResponse struct {
	Messages    []ReceivedMessage `json:"messages"`
	MaxMessages int               `json:"maxMessages"`
}

// MessageRef is the body of POST /messaging/commit (schema messageRef.yaml): every message
// to Destination up to and including SequenceID is removed from the UCRM's queue.
type MessageRef struct {
	Destination string `json:"destination"`
	SequenceID  int64  `json:"sequenceId"`
}

// AppRef names an app a participant supports (schema appRef.yaml).
type AppRef struct {
	AppID               string   `json:"appId"`
	AppVersion          string   `json:"appVersion"`
	UnsupportedMessages []string `json:"unsupportedMessages,omitempty"`
}

// TechSupport is a participant's technical contact (schema techSupport.yaml).
type TechSupport struct {
	Phone   string `json:"phone"`
	Email   string `json:"e-mail"`
	Address string `json:"address,omitempty"`
}

// JWK is an RSA public key as a JSON Web Key (schema jwkRsaPub.yaml).
type JWK struct {
	Kty string `json:"kty"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// Participant statuses (CommParticipant.Status, participant_availability_update).
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
	StatusUnknown = "unknown"
)

// CommParticipant is a registry entry (schema commParticipant.yaml).
type CommParticipant struct {
	ID                        string      `json:"id"`
	Type                      string      `json:"type,omitempty"`
	SystemName                string      `json:"systemName"`
	OperatorName              string      `json:"operatorName"`
	OperatorShortName         string      `json:"operatorShortName"`
	SupportedApps             []AppRef    `json:"supportedApps"`
	TechSupport               TechSupport `json:"techSupport"`
	Key                       *JWK        `json:"key,omitempty"`
	Status                    string      `json:"status,omitempty"`
	TransmitsUnsignedMessages bool        `json:"transmitsUnsignedMessages,omitempty"`
}

// Info describes the UCRM (schema info.yaml). Status 0 is normal operation, 1 starting,
// 2 faulty.
type Info struct {
	APIVersion      string `json:"apiVersion"`
	UCRMProvider    string `json:"ucrmProvider"`
	UCRMProductName string `json:"ucrmProductName"`
	UCRMVersion     string `json:"ucrmVersion"`
	Status          int    `json:"status"`
}

// UCRI2 error codes (ucriErrorCodes.json).
const (
	CodeInvalidTransport    = 460
	CodeUnknownAppID        = 461
	CodeUnknownAppVersion   = 462
	CodeUnknownSchemaID     = 463
	CodeInvalidPayload      = 464
	CodeInvalidJSON         = 465
	CodeUnsupportedApp      = 466
	CodeForbiddenAppID      = 467
	CodeUnsupportedMessage  = 468
	CodeUnknownDestination  = 470
	CodeUnauthorized        = 475
	CodeOIDForbidden        = 478
	CodeWrongSignature      = 479
	CodeInvalidP2PTransport = 480
	CodeInternalError       = 491
)

// Error is a UCRI2 error (schema error.yaml), as the UCRM answers a failed request and as
// this package reports an invalid message.
type Error struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

func (e *Error) Error() string {
	s := "ucri: " + strconv.Itoa(e.Code) + " " + e.Reason
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}
