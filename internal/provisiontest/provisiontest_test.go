package provisiontest

import "testing"

func TestSpecLoads(t *testing.T) {
	doc, _ := Spec(t)
	if doc.Paths.Len() < 10 {
		t.Errorf("the document has %d paths", doc.Paths.Len())
	}
}
