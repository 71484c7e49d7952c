package email

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

// scanHost is a memHost whose virus scanner answers with err.
type scanHost struct {
	*memHost
	err   error
	scans int
}

func (h *scanHost) ScanFile(context.Context, appservice.Direction, string, []byte) error {
	h.scans++
	return h.err
}

// An inline image refused in one run of a mail is refused in the run that completes the
// mail after a crash too, whatever the scanner says then, and is never a file: the text
// posted without it stays right, and the mail's files keep their indices.
func TestInlineImageRefusalIsKept(t *testing.T) {
	ctx := context.Background()
	h := &scanHost{memHost: newMemHost(), err: &appservice.InfectedError{Name: "bild.png", Signature: "Test.Sig"}}
	m := &mailbox{b: &Bridge{host: h, cfg: Config{MaxAttachmentBytes: 1 << 20}}, room: "!room"}
	mail := func() *mailparse.Mail {
		return &mailparse.Mail{HTML: `<p>Bild: <img src="cid:img1"></p>`,
			Inline: []mailparse.Part{{ContentID: "img1", FileName: "bild.png", ContentType: "image/png", Data: []byte("png")}}}
	}
	run1 := &postRun{m: m, key: "k"}
	out, shown, refused, err := m.inlineImages(ctx, run1, nil, mail())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "cid:") || len(shown) != 0 || len(refused) != 1 || refused[0].Name != "bild.png" ||
		!strings.Contains(refused[0].Reason, "Test.Sig") {
		t.Fatalf("run 1: html %q, shown %v, refused %+v", out, shown, refused)
	}

	// The crash; clamd now finds the image clean (it may, when the first refusal was
	// because clamd stayed away).
	h.err, h.scans = nil, 0
	run2 := &postRun{m: m, key: "k", resumed: true, marked: true}
	m2 := mail()
	out, shown, refused, err = m.inlineImages(ctx, run2, nil, m2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "cid:") || len(shown) != 0 || len(refused) != 1 || len(m2.Inline) != 0 || h.scans != 0 {
		t.Fatalf("run 2: html %q, shown %v, refused %+v, inline files %d, scans %d; want the image refused as before, unscanned",
			out, shown, refused, len(m2.Inline), h.scans)
	}
	if err := run2.finish(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.st.kv[inlineRefusedKey("k")]; ok {
		t.Error("the record of refused images outlived the mail")
	}
}
