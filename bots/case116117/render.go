package case116117

import (
	"fmt"
	"html"
	"strconv"
	"strings"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// caseTitle is a case room's name: classification and place, never a person's name (room
// names are state, and state is never encrypted).
func caseTitle(inc *ucri.Incident) string {
	what := "Fall"
	if len(inc.Classifications) > 0 {
		what += " " + strings.Join(inc.Classifications, "/")
	} else if inc.Issue != "" {
		what += " " + inc.Issue
	}
	where := ""
	loc := inc.MissionLocation
	switch {
	case loc.Address != nil && loc.Address.City != "":
		where = loc.Address.City
		if loc.Address.CityDistrict != "" {
			where += "-" + loc.Address.CityDistrict
		}
	case loc.Address != nil && loc.Address.PostalCode != "":
		where = loc.Address.PostalCode
	case loc.Coordinate != nil:
		where = fmt.Sprintf("%.3f, %.3f", loc.Coordinate.Lat, loc.Coordinate.Lon)
	}
	if where != "" {
		what += " · " + where
	}
	return truncate(what, 80)
}

// section is one block of the case summary: a label and its lines.
type section struct {
	label string
	lines []string
}

// renderIncident is the readable summary of an incident: location, patients, initial
// assessment, callback numbers and remarks, as plain text and HTML.
func renderIncident(inc *ucri.Incident, peer string, update bool, role string) (string, string) {
	head := "🚑 Neuer Fall von " + peer
	if role == roleOutgoing {
		head = "📤 Fall zur Übergabe an " + peer
	}
	if update {
		head = "🔄 Aktualisierung des Falls von " + peer
	}
	var secs []section
	var kind []string
	if len(inc.Classifications) > 0 {
		kind = append(kind, "Einstufung: "+strings.Join(inc.Classifications, ", "))
	}
	if inc.Issue != "" {
		kind = append(kind, "Anlass: "+inc.Issue)
	}
	if inc.FlashingLights != nil {
		kind = append(kind, "Sonderrechte: "+yesNo(*inc.FlashingLights))
	}
	if len(kind) > 0 {
		secs = append(secs, section{"Einsatz", []string{strings.Join(kind, " · ")}})
	}
	secs = append(secs, section{"Einsatzort", locationLines(inc.MissionLocation)})
	for i, p := range inc.Patients {
		secs = append(secs, section{fmt.Sprintf("Patient %d", i+1), patientLines(p)})
	}
	var callback []string
	for _, p := range inc.Informers {
		if p.Phone != "" || p.Email != "" {
			callback = append(callback, personName(p)+" (Anrufer): "+join(", ", p.Phone, p.Email))
		}
	}
	for i, p := range inc.Patients {
		if p.Phone != "" {
			callback = append(callback, fmt.Sprintf("Patient %d: %s", i+1, p.Phone))
		}
	}
	if len(callback) > 0 {
		secs = append(secs, section{"Rückrufnummern", callback})
	}
	var remarks []string
	if inc.AdditionalInformation != "" {
		remarks = append(remarks, inc.AdditionalInformation)
	}
	for _, p := range inc.Informers {
		if p.AdditionalInformation != "" {
			remarks = append(remarks, "Anrufer "+personName(p)+": "+p.AdditionalInformation)
		}
	}
	for _, n := range inc.ProtocolRemarks {
		if n.Silent != nil && *n.Silent {
			continue
		}
		remarks = append(remarks, join(" ", n.Timestamp, bracket(n.Category), n.Message))
	}
	if len(remarks) > 0 {
		secs = append(secs, section{"Bemerkungen", remarks})
	}
	times := []string{"Fall-ID " + inc.SharedIncidentID}
	if inc.InternalID != "" {
		times = append(times, "interne Nr. "+inc.InternalID)
	}
	times = append(times, "übergeben "+inc.SentByDispatcherAt)
	if inc.StartTimestamp != "" {
		times = append(times, "Einsatzbeginn "+inc.StartTimestamp)
	}
	secs = append(secs, section{"Daten", []string{strings.Join(times, " · ")}})
	foot := "Befehle: !accept [Bemerkung] · !reject <Grund> · !complete [Info] · !abort [Info] · !status — oder mit ✅ annehmen / ❌ ablehnen reagieren."
	if role == roleOutgoing {
		foot = "Antworten der Leitstelle erscheinen hier. !status zeigt den Verlauf."
	}

	var t, h strings.Builder
	t.WriteString(head + "\n")
	h.WriteString("<p><strong>" + esc(head) + "</strong></p>")
	for _, s := range secs {
		if len(s.lines) == 0 {
			continue
		}
		t.WriteString(s.label + ": " + strings.Join(s.lines, "\n  ") + "\n")
		h.WriteString("<p><strong>" + esc(s.label) + ":</strong> ")
		for i, line := range s.lines {
			if i > 0 {
				h.WriteString("<br/>")
			}
			h.WriteString(esc(line))
		}
		h.WriteString("</p>")
	}
	t.WriteString(foot)
	h.WriteString("<p><em>" + esc(foot) + "</em></p>")
	return t.String(), h.String()
}

func locationLines(l ucri.Location) []string {
	var out []string
	if l.Address != nil {
		out = append(out, addressLine(l.Address))
	}
	if l.Object != nil {
		out = append(out, "Objekt: "+join(" — ", l.Object.Name, l.Object.AdditionalInformation))
	}
	if l.SuperiorObject != nil {
		out = append(out, "Übergeordnet: "+join(" — ", l.SuperiorObject.Name, l.SuperiorObject.AdditionalInformation))
	}
	if s := join(", ", prefixed("Etage ", l.Floor), prefixed("Zimmer ", l.Room)); s != "" {
		out = append(out, s)
	}
	if l.Coordinate != nil {
		out = append(out, fmt.Sprintf("Koordinate %.6f, %.6f (WGS84)", l.Coordinate.Lat, l.Coordinate.Lon))
	}
	if l.AdditionalInformation != "" {
		out = append(out, l.AdditionalInformation)
	}
	return out
}

func addressLine(a *ucri.Address) string {
	city := join(" ", a.PostalCode, a.City)
	if a.CityDistrict != "" {
		city += " (" + a.CityDistrict + ")"
	}
	return join(", ", join(" ", a.Street, a.HouseNumber), city, a.State, a.Country, a.AdditionalInformation)
}

func patientLines(p ucri.Patient) []string {
	var facts []string
	switch p.Gender {
	case "Male":
		facts = append(facts, "männlich")
	case "Female":
		facts = append(facts, "weiblich")
	case "Diverse":
		facts = append(facts, "divers")
	}
	if p.DateOfBirth != "" {
		facts = append(facts, "geb. "+p.DateOfBirth)
	}
	if p.Age != nil {
		facts = append(facts, strconv.FormatFloat(*p.Age, 'f', -1, 64)+" Jahre")
	}
	out := []string{join(", ", append([]string{personName(p.Person)}, facts...)...)}
	if p.Address != nil {
		out = append(out, "Adresse: "+addressLine(p.Address))
	}
	if a := p.InitialAssessment; a != nil {
		out = append(out, "Ersteinschätzung: "+join(" · ", prefixed("RMI ", a.RMI), prefixed("RMC ", a.RMC), prefixed("PZC ", a.PZC), a.AdditionalInformation))
	}
	if p.InfectionStatus != nil || p.InfectionInformation != "" {
		s := "Infektion: "
		if p.InfectionStatus != nil {
			s += yesNo(*p.InfectionStatus)
		}
		out = append(out, join(" — ", s, p.InfectionInformation))
	}
	if h := p.HealthInsuranceInformation; h != nil {
		out = append(out, "Versicherung: "+join(", ", h.HealthInsuranceCompany, prefixed("IK ", h.HealthInsuranceCompanyNumber), prefixed("Nr. ", h.InsuranceNumber)))
	}
	if p.TransportNumber != "" {
		out = append(out, "Transportnummer: "+p.TransportNumber)
	}
	if p.AdditionalInformation != "" {
		out = append(out, p.AdditionalInformation)
	}
	return out
}

func personName(p ucri.Person) string { return join(" ", p.Surname, p.Name) }

func yesNo(b bool) string {
	if b {
		return "ja"
	}
	return "nein"
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func bracket(s string) string {
	if s == "" {
		return ""
	}
	return "[" + s + "]"
}

// join joins the non-empty parts.
func join(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}

func esc(s string) string { return html.EscapeString(s) }
