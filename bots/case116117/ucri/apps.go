package ucri

// This file holds the app messages of incident_transfer_with_patient 1.0 and
// transport_layer_messages 1.0. Field names and JSON tags follow the official schemas in
// package spec exactly. Required fields have no omitempty (an empty value is then reported
// by the schema, not silently dropped); optional fields have omitempty, and optional
// booleans and numbers whose zero value means something are pointers.

// Message is an app message: one of *Incident, *Acknowledgement, *Completion,
// *DeliveryStatus and *AvailabilityUpdate (or their values).
type Message interface {
	// Kind names the message's app and schema; the app version is always AppVersion.
	Kind() (appID, schemaID string)
}

// Acknowledgement statuses.
const (
	AckAccepted = "accepted"
	AckRejected = "rejected"
)

// Completion statuses. "completed_sucessfully" is spelled as in the official schema.
const (
	CompletedSuccessfully = "completed_sucessfully"
	Aborted               = "aborted"
)

// Patient genders.
const (
	GenderMale    = "Male"
	GenderFemale  = "Female"
	GenderDiverse = "Diverse"
)

// Delivery status codes of message_delivery_status.
const (
	DeliveryOK          = 200 // delivered
	DeliveryRemoteError = 502 // the remote UCRM reported an error
	DeliveryTimeout     = 504 // not delivered within the envelope's timeout
)

// Incident is the incident message of incident_transfer_with_patient 1.0: an incident with
// its patients, handed over to another dispatch centre. Date-times are UTC (FormatTime).
type Incident struct {
	SharedIncidentID      string         `json:"sharedIncidentId"`
	InternalID            string         `json:"internalId,omitempty"`
	AdditionalInformation string         `json:"additionalInformation,omitempty"`
	SentByDispatcherAt    string         `json:"sentByDispatcherAt"`
	Informers             []Person       `json:"informers,omitempty"`
	ProtocolRemarks       []Notification `json:"protocolRemarks,omitempty"`
	StartTimestamp        string         `json:"startTimestamp,omitempty"`
	Classifications       []string       `json:"classifications,omitempty"`
	Issue                 string         `json:"issue,omitempty"`
	FlashingLights        *bool          `json:"flashingLights,omitempty"`
	MissionLocation       Location       `json:"missionLocation"`
	Patients              []Patient      `json:"patients"`
}

// Kind implements Message.
func (Incident) Kind() (appID, schemaID string) { return AppIncidentWithPatient, SchemaIncident }

// Person is an informer, and the part of a patient that any person has. Name is the
// surname, Surname the given name, as in the schema.
type Person struct {
	Name                  string   `json:"name"`
	Surname               string   `json:"surname,omitempty"`
	Phone                 string   `json:"phone,omitempty"`
	Email                 string   `json:"email,omitempty"`
	Address               *Address `json:"address,omitempty"`
	AdditionalInformation string   `json:"additionalInformation,omitempty"`
}

// Patient is a patient of an incident. DateOfBirth is an ISO 8601 date ("1980-12-30"); Age
// is in years.
type Patient struct {
	Person
	Gender                     string             `json:"gender,omitempty"`
	DateOfBirth                string             `json:"dateOfBirth,omitempty"`
	Age                        *float64           `json:"age,omitempty"`
	HealthInsuranceInformation *HealthInsurance   `json:"healthInsuranceInformation,omitempty"`
	InitialAssessment          *InitialAssessment `json:"initialAssessment,omitempty"`
	InfectionInformation       string             `json:"infectionInformation,omitempty"`
	InfectionStatus            *bool              `json:"infectionStatus,omitempty"`
	TransportNumber            string             `json:"transportNumber,omitempty"`
}

// Address is a postal address; only Street is required. Country is an ISO 3166-1 alpha-2
// code ("DE").
type Address struct {
	Street                string `json:"street"`
	HouseNumber           string `json:"houseNumber,omitempty"`
	PostalCode            string `json:"postalCode,omitempty"`
	City                  string `json:"city,omitempty"`
	CityDistrict          string `json:"cityDistrict,omitempty"`
	State                 string `json:"state,omitempty"`
	Country               string `json:"country,omitempty"`
	AdditionalInformation string `json:"additionalInformation,omitempty"`
}

// Location is a mission location; at least one of Coordinate and Address is required.
type Location struct {
	Coordinate            *Coordinate    `json:"coordinate,omitempty"`
	Address               *Address       `json:"address,omitempty"`
	Object                *MissionObject `json:"object,omitempty"`
	SuperiorObject        *MissionObject `json:"superiorObject,omitempty"`
	Floor                 string         `json:"floor,omitempty"`
	Room                  string         `json:"room,omitempty"`
	AdditionalInformation string         `json:"additionalInformation,omitempty"`
}

// Coordinate is a WGS84 coordinate in degrees. Both values are required, so 0 is sent.
type Coordinate struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// MissionObject is a named object at a mission location (a building, a ward).
type MissionObject struct {
	Name                  string `json:"name"`
	AdditionalInformation string `json:"additionalInformation,omitempty"`
}

// Notification is a protocol remark of an incident. Silent true means it is only logged,
// not shown to the receiving dispatcher.
type Notification struct {
	Timestamp string `json:"timestamp"`
	Message   string `json:"message"`
	Category  string `json:"category,omitempty"`
	Silent    *bool  `json:"silent,omitempty"`
}

// HealthInsurance is a patient's health insurance. HealthInsuranceCompanyNumber is the
// nine-digit Institutionskennzeichen.
type HealthInsurance struct {
	HealthInsuranceCompany       string `json:"healthInsuranceCompany,omitempty"`
	HealthInsuranceCompanyNumber string `json:"healthInsuranceCompanyNumber,omitempty"`
	InsuranceNumber              string `json:"insuranceNumber,omitempty"`
}

// InitialAssessment is a patient's initial assessment; at least one field is required. RMI
// is the three-digit Rückmeldeindikator, RMC the Rückmeldecode, PZC the six-digit
// Patientenzuweisungscode.
type InitialAssessment struct {
	RMI                   string `json:"rmi,omitempty"`
	RMC                   string `json:"rmc,omitempty"`
	PZC                   string `json:"pzc,omitempty"`
	AdditionalInformation string `json:"additionalInformation,omitempty"`
}

func (a *InitialAssessment) empty() bool {
	return a.RMI == "" && a.RMC == "" && a.PZC == "" && a.AdditionalInformation == ""
}

// Acknowledgement accepts or rejects an incident (incident_transfer_with_patient 1.0).
// Status is AckAccepted or AckRejected.
type Acknowledgement struct {
	SharedIncidentID           string `json:"sharedIncidentId"`
	AcknowledgedByDispatcherAt string `json:"acknowledgedByDispatcherAt"`
	Status                     string `json:"status"`
	Cause                      string `json:"cause,omitempty"`
}

// Kind implements Message.
func (Acknowledgement) Kind() (appID, schemaID string) {
	return AppIncidentWithPatient, SchemaAcknowledgement
}

// Completion reports the end of an incident (incident_transfer_with_patient 1.0). Status is
// CompletedSuccessfully or Aborted.
type Completion struct {
	SharedIncidentID      string `json:"sharedIncidentId"`
	CompletedAt           string `json:"completedAt"`
	Status                string `json:"status"`
	AdditionalInformation string `json:"additionalInformation,omitempty"`
}

// Kind implements Message.
func (Completion) Kind() (appID, schemaID string) { return AppIncidentWithPatient, SchemaCompletion }

// DeliveryStatus is the message_delivery_status of transport_layer_messages 1.0: a UCRM's
// technical acknowledgement of the message RefMessageID to Destination. StatusCode is one of
// DeliveryOK, DeliveryRemoteError and DeliveryTimeout; Cause is the UCRI2 error behind a
// failure (may be nil). StatusMessage has at most 100 characters.
type DeliveryStatus struct {
	RefMessageID  string `json:"refMessageId"`
	Destination   string `json:"destination"`
	StatusCode    int    `json:"statusCode"`
	Cause         *Error `json:"cause,omitempty"`
	StatusMessage string `json:"statusMessage,omitempty"`
}

// Kind implements Message.
func (DeliveryStatus) Kind() (appID, schemaID string) { return AppTransport, SchemaDeliveryStatus }

// AvailabilityUpdate is the participant_availability_update of transport_layer_messages
// 1.0: participant ID is now StatusOnline, StatusOffline or StatusUnknown.
type AvailabilityUpdate struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// Kind implements Message.
func (AvailabilityUpdate) Kind() (appID, schemaID string) { return AppTransport, SchemaAvailability }

// newMessage returns a pointer to a zero message of the given app and schema, or nil.
func newMessage(appID, schemaID string) Message {
	switch appID {
	case AppIncidentWithPatient:
		switch schemaID {
		case SchemaIncident:
			return new(Incident)
		case SchemaAcknowledgement:
			return new(Acknowledgement)
		case SchemaCompletion:
			return new(Completion)
		}
	case AppTransport:
		switch schemaID {
		case SchemaDeliveryStatus:
			return new(DeliveryStatus)
		case SchemaAvailability:
			return new(AvailabilityUpdate)
		}
	}
	return nil
}

// normalize drops what a decoded message carries that has no meaning and that would not
// survive a round trip through the Go types: an initialAssessment whose only property is an
// empty additionalInformation (valid per minProperties, but empty after omitempty).
func normalize(m Message) {
	if in, ok := m.(*Incident); ok {
		for i := range in.Patients {
			if a := in.Patients[i].InitialAssessment; a != nil && a.empty() {
				in.Patients[i].InitialAssessment = nil
			}
		}
	}
}
