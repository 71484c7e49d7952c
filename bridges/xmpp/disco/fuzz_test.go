package disco

import (
	"reflect"
	"testing"
)

// FuzzParseInfo: ParseInfo never panics, and what it accepts marshals to XML that parses
// back to the same Info with the same caps ver.
func FuzzParseInfo(f *testing.F) {
	f.Add(simple.Marshal())
	f.Add(complexInfo.Marshal())
	f.Add([]byte(`<d:query xmlns:d="http://jabber.org/protocol/disco#info" node="n"><d:identity category="a" type="b" xml:lang="en"/><x xmlns="jabber:x:data" type="result"><field var="FORM_TYPE"><value>v</value></field></x></d:query>`))
	f.Fuzz(func(t *testing.T, inner []byte) {
		info, err := ParseInfo(inner)
		if err != nil {
			return
		}
		ver := CapsVer(*info)
		again, err := ParseInfo(info.Marshal())
		if err != nil {
			t.Fatalf("Marshal output %q does not parse: %v", info.Marshal(), err)
		}
		if !reflect.DeepEqual(normal(*info), normal(*again)) || CapsVer(*again) != ver {
			t.Fatalf("round trip changed %+v to %+v", info, again)
		}
	})
}

// normal makes empty slices nil, as encoding/xml reads them.
func normal(i Info) Info {
	for k := range i.Forms {
		for j := range i.Forms[k].Fields {
			if len(i.Forms[k].Fields[j].Values) == 0 {
				i.Forms[k].Fields[j].Values = nil
			}
		}
	}
	return i
}
