package disco

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"strings"
)

// CapsVer computes the XEP-0115 verification string of i (section 5.1, hash sha-1):
// identities sorted by category, type, xml:lang (then name), features sorted, then the
// forms sorted by FORM_TYPE with their fields sorted by var and values sorted. Forms
// without a FORM_TYPE are left out, as XEP-0115 section 5.4 tells a verifier to.
func CapsVer(i Info) string {
	var s strings.Builder
	ids := slices.Clone(i.Identities)
	slices.SortFunc(ids, func(a, b Identity) int {
		return cmp.Or(strings.Compare(a.Category, b.Category), strings.Compare(a.Type, b.Type),
			strings.Compare(a.Lang, b.Lang), strings.Compare(a.Name, b.Name))
	})
	for _, id := range ids {
		s.WriteString(id.Category + "/" + id.Type + "/" + id.Lang + "/" + id.Name + "<")
	}
	features := slices.Clone(i.Features)
	slices.Sort(features)
	for _, f := range features {
		s.WriteString(f + "<")
	}
	forms := make([]Form, 0, len(i.Forms))
	for _, f := range i.Forms {
		if f.FormType() != "" {
			forms = append(forms, f)
		}
	}
	slices.SortStableFunc(forms, func(a, b Form) int { return strings.Compare(a.FormType(), b.FormType()) })
	for _, f := range forms {
		s.WriteString(f.FormType() + "<")
		fields := make([]Field, 0, len(f.Fields))
		for _, fl := range f.Fields {
			if fl.Var != "FORM_TYPE" {
				fields = append(fields, fl)
			}
		}
		slices.SortStableFunc(fields, func(a, b Field) int { return strings.Compare(a.Var, b.Var) })
		for _, fl := range fields {
			s.WriteString(fl.Var + "<")
			values := slices.Clone(fl.Values)
			slices.Sort(values)
			for _, v := range values {
				s.WriteString(v + "<")
			}
		}
	}
	sum := sha1.Sum([]byte(s.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// CapsElement writes the XEP-0115 c element for a presence: node is the software's URI
// (e.g. "https://github.com/switchboard-matrix/switchboard"), i what it answers to a
// disco#info query for node#ver.
func CapsElement(node string, i Info) []byte {
	var b bytes.Buffer
	b.WriteString("<c xmlns='" + NSCaps + "' hash='sha-1'")
	attr(&b, "node", node)
	attr(&b, "ver", CapsVer(i))
	b.WriteString("/>")
	return b.Bytes()
}
