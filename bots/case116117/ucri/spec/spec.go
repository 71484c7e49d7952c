// Package spec holds verbatim copies of the official UCRI2 specification files that
// Switchboard validates against: the app JSON schemas of incident_transfer_with_patient 1.0
// and transport_layer_messages 1.0, and the bundled UCRM Client API (OpenAPI 3.1, whose
// components are JSON Schema 2020-12). The files come unchanged from the UCRI2 project
// (github.com/PMeV-EFUL/ucri2); a test compares them with ../shared/ucri2 when it is present.
package spec

import "embed"

// FS holds apps/<appId>/<appVersion>/<schemaId>.schema.json and api/ucrm-client-bundled.json.
//
//go:embed apps api
var FS embed.FS

// ClientAPI is the path in FS of the bundled UCRM Client API.
const ClientAPI = "api/ucrm-client-bundled.json"

// AppSchema is the path in FS of an app message's JSON schema.
func AppSchema(appID, appVersion, schemaID string) string {
	return "apps/" + appID + "/" + appVersion + "/" + schemaID + ".schema.json"
}
