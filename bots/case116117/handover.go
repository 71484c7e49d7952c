package case116117

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// handoverFields maps the field names a dispatcher may write (German, with English
// aliases) to a setter on the incident being built.
var handoverFields = map[string]func(h *handoverBuild, v string) error{
	"stichwort":    func(h *handoverBuild, v string) error { h.inc.Classifications = splitList(v); return nil },
	"anlass":       func(h *handoverBuild, v string) error { h.inc.Issue = v; return nil },
	"info":         func(h *handoverBuild, v string) error { h.inc.AdditionalInformation = v; return nil },
	"interne_nr":   func(h *handoverBuild, v string) error { h.inc.InternalID = v; return nil },
	"sonderrechte": func(h *handoverBuild, v string) error { b, err := parseYesNo(v); h.inc.FlashingLights = &b; return err },
	"strasse":      func(h *handoverBuild, v string) error { h.addr().Street = v; return nil },
	"hausnummer":   func(h *handoverBuild, v string) error { h.addr().HouseNumber = v; return nil },
	"plz":          func(h *handoverBuild, v string) error { h.addr().PostalCode = v; return nil },
	"ort":          func(h *handoverBuild, v string) error { h.addr().City = v; return nil },
	"ortsteil":     func(h *handoverBuild, v string) error { h.addr().CityDistrict = v; return nil },
	"lat":          func(h *handoverBuild, v string) error { return parseFloat(v, &h.coord().Lat) },
	"lon":          func(h *handoverBuild, v string) error { return parseFloat(v, &h.coord().Lon) },
	"objekt": func(h *handoverBuild, v string) error {
		h.inc.MissionLocation.Object = &ucri.MissionObject{Name: v}
		return nil
	},
	"etage":             func(h *handoverBuild, v string) error { h.inc.MissionLocation.Floor = v; return nil },
	"zimmer":            func(h *handoverBuild, v string) error { h.inc.MissionLocation.Room = v; return nil },
	"ortsinfo":          func(h *handoverBuild, v string) error { h.inc.MissionLocation.AdditionalInformation = v; return nil },
	"patient":           func(h *handoverBuild, v string) error { h.newPatient(v); return nil },
	"geschlecht":        func(h *handoverBuild, v string) error { return h.setGender(v) },
	"geburtsdatum":      func(h *handoverBuild, v string) error { return h.setBirth(v) },
	"alter":             func(h *handoverBuild, v string) error { return h.setAge(v) },
	"telefon":           func(h *handoverBuild, v string) error { h.patient().Phone = v; return nil },
	"ersteinschaetzung": func(h *handoverBuild, v string) error { h.assess().AdditionalInformation = v; return nil },
	"rmi":               func(h *handoverBuild, v string) error { h.assess().RMI = v; return nil },
	"rmc":               func(h *handoverBuild, v string) error { h.assess().RMC = v; return nil },
	"pzc":               func(h *handoverBuild, v string) error { h.assess().PZC = v; return nil },
	"infektion":         func(h *handoverBuild, v string) error { h.patient().InfectionInformation = v; return nil },
	"patient_info":      func(h *handoverBuild, v string) error { h.patient().AdditionalInformation = v; return nil },
	"anrufer":           func(h *handoverBuild, v string) error { h.newInformer(v); return nil },
	"anrufer_telefon":   func(h *handoverBuild, v string) error { h.informer().Phone = v; return nil },
	"bemerkung": func(h *handoverBuild, v string) error {
		h.inc.ProtocolRemarks = append(h.inc.ProtocolRemarks, ucri.Notification{Timestamp: ucri.FormatTime(h.at), Message: v})
		return nil
	},
}

var fieldAliases = map[string]string{
	"classification": "stichwort", "classifications": "stichwort", "issue": "anlass", "internal_id": "interne_nr",
	"flashing_lights": "sonderrechte", "street": "strasse", "straße": "strasse", "house": "hausnummer",
	"postcode": "plz", "postal_code": "plz", "city": "ort", "district": "ortsteil", "object": "objekt",
	"floor": "etage", "room": "zimmer", "location_info": "ortsinfo", "gender": "geschlecht", "dob": "geburtsdatum",
	"birth": "geburtsdatum", "age": "alter", "phone": "telefon", "assessment": "ersteinschaetzung",
	"ersteinschätzung": "ersteinschaetzung", "infection": "infektion", "informer": "anrufer", "caller": "anrufer",
	"informer_phone": "anrufer_telefon", "caller_phone": "anrufer_telefon", "remark": "bemerkung",
}

type handoverBuild struct {
	inc *ucri.Incident
	at  time.Time
}

func (h *handoverBuild) addr() *ucri.Address {
	if h.inc.MissionLocation.Address == nil {
		h.inc.MissionLocation.Address = &ucri.Address{}
	}
	return h.inc.MissionLocation.Address
}

func (h *handoverBuild) coord() *ucri.Coordinate {
	if h.inc.MissionLocation.Coordinate == nil {
		h.inc.MissionLocation.Coordinate = &ucri.Coordinate{}
	}
	return h.inc.MissionLocation.Coordinate
}

func (h *handoverBuild) newPatient(name string) {
	last, first, _ := strings.Cut(name, ",")
	h.inc.Patients = append(h.inc.Patients, ucri.Patient{Person: ucri.Person{Name: strings.TrimSpace(last), Surname: strings.TrimSpace(first)}})
}

func (h *handoverBuild) patient() *ucri.Patient {
	if len(h.inc.Patients) == 0 {
		h.newPatient("unbekannt")
	}
	return &h.inc.Patients[len(h.inc.Patients)-1]
}

func (h *handoverBuild) assess() *ucri.InitialAssessment {
	p := h.patient()
	if p.InitialAssessment == nil {
		p.InitialAssessment = &ucri.InitialAssessment{}
	}
	return p.InitialAssessment
}

func (h *handoverBuild) newInformer(name string) {
	last, first, _ := strings.Cut(name, ",")
	h.inc.Informers = append(h.inc.Informers, ucri.Person{Name: strings.TrimSpace(last), Surname: strings.TrimSpace(first)})
}

func (h *handoverBuild) informer() *ucri.Person {
	if len(h.inc.Informers) == 0 {
		h.newInformer("unbekannt")
	}
	return &h.inc.Informers[len(h.inc.Informers)-1]
}

func (h *handoverBuild) setGender(v string) error {
	switch strings.ToLower(v) {
	case "m", "männlich", "male":
		h.patient().Gender = "Male"
	case "w", "f", "weiblich", "female":
		h.patient().Gender = "Female"
	case "d", "divers", "diverse":
		h.patient().Gender = "Diverse"
	default:
		return fmt.Errorf("geschlecht: %q ist nicht m, w oder d", v)
	}
	return nil
}

func (h *handoverBuild) setBirth(v string) error {
	for _, layout := range []string{"2006-01-02", "02.01.2006", "2.1.2006"} {
		if t, err := time.Parse(layout, v); err == nil {
			h.patient().DateOfBirth = t.Format("2006-01-02")
			return nil
		}
	}
	return fmt.Errorf("geburtsdatum: %q ist kein Datum (JJJJ-MM-TT oder TT.MM.JJJJ)", v)
}

func (h *handoverBuild) setAge(v string) error {
	var age float64
	if err := parseFloat(v, &age); err != nil {
		return err
	}
	h.patient().Age = &age
	return nil
}

// parseHandover builds an incident from the lines "Feld: Wert" of a !handover command.
func parseHandover(fields, caseID string, at time.Time) (*ucri.Incident, error) {
	h := &handoverBuild{inc: &ucri.Incident{SharedIncidentID: caseID, SentByDispatcherAt: ucri.FormatTime(at)}, at: at}
	for n, line := range strings.Split(fields, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("zeile %d: „Feld: Wert“ erwartet", n+1)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if a, ok := fieldAliases[name]; ok {
			name = a
		}
		set, ok := handoverFields[name]
		if !ok {
			return nil, fmt.Errorf("zeile %d: unbekanntes Feld %q (!help listet die Felder)", n+1, name)
		}
		if err := set(h, strings.TrimSpace(value)); err != nil {
			return nil, fmt.Errorf("zeile %d: %w", n+1, err)
		}
	}
	if len(h.inc.Patients) == 0 {
		return nil, fmt.Errorf("mindestens ein Patient ist nötig (patient: Nachname, Vorname)")
	}
	if h.inc.MissionLocation.Address == nil && h.inc.MissionLocation.Coordinate == nil {
		return nil, fmt.Errorf("ein Einsatzort ist nötig (strasse/ort oder lat/lon)")
	}
	return h.inc, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseYesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "ja", "j", "yes", "y", "true":
		return true, nil
	case "nein", "n", "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q ist nicht ja oder nein", v)
}

func parseFloat(v string, dst *float64) error {
	f, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64)
	if err != nil {
		return fmt.Errorf("%q ist keine Zahl", v)
	}
	*dst = f
	return nil
}
