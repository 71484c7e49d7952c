// Package vcard reads and writes the parts of XEP-0054 vcard-temp the XMPP bridge uses
// (full name, nickname and photo), the XEP-0153 photo hash and XEP-0172 user nicknames. It works on the vCard
// element only (the payload of an iq); the iq envelope is package iq's. It knows nothing
// of Matrix.
package vcard

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Namespaces.
const (
	NS       = "vcard-temp"
	NSUpdate = "vcard-temp:x:update" // XEP-0153 presence element
)

// MaxPhoto is the largest decoded photo Parse accepts.
const MaxPhoto = 8 << 20

// Errors of Parse; each is wrapped with the detail.
var (
	ErrMalformed = errors.New("vcard: malformed")
	ErrTooLarge  = errors.New("vcard: photo too large")
)

// Card is the part of a vCard the bridge uses.
type Card struct {
	FullName  string // FN
	Nick      string // NICKNAME
	PhotoType string // PHOTO/TYPE, a MIME type; Parse sniffs it when the card has none
	Photo     []byte // PHOTO/BINVAL decoded; nil when the card has no photo
}

type wire struct {
	XMLName  xml.Name `xml:"vcard-temp vCard"`
	FullName string   `xml:"vcard-temp FN"`
	Nick     string   `xml:"vcard-temp NICKNAME"`
	Photo    struct {
		Type   string `xml:"vcard-temp TYPE"`
		BinVal string `xml:"vcard-temp BINVAL"`
	} `xml:"vcard-temp PHOTO"`
}

// Parse reads inner, a vCard element in vcard-temp (IQ.Inner of a vCard result). An
// empty vCard is a card without data. White space inside BINVAL is ignored; a photo that
// decodes to more than MaxPhoto bytes is refused with ErrTooLarge. When only the photo is
// bad, Parse returns the card without it (names kept) together with the error.
func Parse(inner []byte) (*Card, error) {
	var w wire
	if err := xml.Unmarshal(inner, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	c := &Card{
		FullName:  strings.TrimSpace(w.FullName),
		Nick:      strings.TrimSpace(w.Nick),
		PhotoType: strings.TrimSpace(w.Photo.Type),
	}
	b64 := stripSpace(w.Photo.BinVal)
	if b64 == "" {
		c.PhotoType = ""
		return c, nil
	}
	if len(b64) > base64.StdEncoding.EncodedLen(MaxPhoto) {
		c.PhotoType = ""
		return c, fmt.Errorf("%w: %d base64 characters, the limit is %d bytes decoded", ErrTooLarge, len(b64), MaxPhoto)
	}
	photo, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// Some clients leave out the padding.
		var err2 error
		photo, err2 = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
		if err2 != nil {
			c.PhotoType = ""
			return c, fmt.Errorf("%w: photo: %v", ErrMalformed, err)
		}
	}
	if len(photo) > MaxPhoto {
		c.PhotoType = ""
		return c, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(photo), MaxPhoto)
	}
	c.Photo = photo
	if c.PhotoType == "" {
		c.PhotoType = http.DetectContentType(photo)
	}
	return c, nil
}

// stripSpace removes all XML white space from s.
func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}

// Marshal writes the card as a vCard element; empty fields are left out, and PHOTO when
// Photo is empty.
func (c Card) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("<vCard xmlns='" + NS + "'>")
	element(&b, "FN", c.FullName)
	element(&b, "NICKNAME", c.Nick)
	if len(c.Photo) > 0 {
		b.WriteString("<PHOTO>")
		element(&b, "TYPE", c.PhotoType)
		b.WriteString("<BINVAL>")
		b.WriteString(base64.StdEncoding.EncodeToString(c.Photo))
		b.WriteString("</BINVAL></PHOTO>")
	}
	b.WriteString("</vCard>")
	return b.Bytes()
}

func element(b *bytes.Buffer, name, text string) {
	if text == "" {
		return
	}
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">")
}

// Request returns the payload of an iq get for a vCard.
func Request() []byte { return []byte("<vCard xmlns='" + NS + "'/>") }

// PhotoHash returns the XEP-0153 hash of photo: SHA-1 in lower-case hex, "" for no photo.
func PhotoHash(photo []byte) string {
	if len(photo) == 0 {
		return ""
	}
	sum := sha1.Sum(photo)
	return hex.EncodeToString(sum[:])
}

// UpdateElement writes the XEP-0153 element for a presence announcing the photo with
// hash ("" announces that there is no photo).
func UpdateElement(hash string) []byte {
	if hash == "" {
		return []byte("<x xmlns='" + NSUpdate + "'><photo/></x>")
	}
	var b bytes.Buffer
	b.WriteString("<x xmlns='" + NSUpdate + "'><photo>")
	_ = xml.EscapeText(&b, []byte(hash))
	b.WriteString("</photo></x>")
	return b.Bytes()
}

// ParseUpdate finds the XEP-0153 element among the children of presence, one complete
// presence element, and returns the photo hash it announces. ok is false when the
// presence has no such element or it has no photo child (the sender is not ready to
// advertise an image); hash "" with ok true means the sender has no photo.
func ParseUpdate(presence []byte) (hash string, ok bool, err error) {
	var p struct {
		XMLName xml.Name
		X       []struct {
			XMLName xml.Name
			Photo   *string `xml:"vcard-temp:x:update photo"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(presence, &p); err != nil {
		return "", false, fmt.Errorf("%w: presence: %v", ErrMalformed, err)
	}
	if p.XMLName.Local != "presence" {
		return "", false, fmt.Errorf("%w: <%s> is not a presence", ErrMalformed, p.XMLName.Local)
	}
	for _, x := range p.X {
		if x.XMLName.Space != NSUpdate || x.XMLName.Local != "x" {
			continue
		}
		if x.Photo == nil {
			return "", false, nil
		}
		return strings.ToLower(strings.TrimSpace(*x.Photo)), true, nil
	}
	return "", false, nil
}
