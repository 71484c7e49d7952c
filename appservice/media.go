package appservice

import (
	"context"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/event"
)

// DownloadFile downloads the file of an m.file, m.image, m.audio or m.video message, at
// most maxBytes of it: from its url, or, in an encrypted room, from its file (an encrypted
// attachment), which it decrypts and checks against the attachment's hash. Modules never
// see the ciphertext. When scanning is on (and scanning.outbound), the file is checked for
// malware before it is returned (see Host.ScanFile for the errors).
func (in *Intent) DownloadFile(ctx context.Context, c *event.MessageEventContent, maxBytes int64) ([]byte, error) {
	data, err := in.downloadFile(ctx, c, maxBytes)
	if err != nil || in.core == nil {
		return data, err
	}
	name := c.FileName
	if name == "" {
		name = c.Body
	}
	if err := in.core.scan.scanFile(ctx, in.module, Outbound, name, data); err != nil {
		return nil, err
	}
	return data, nil
}

func (in *Intent) downloadFile(ctx context.Context, c *event.MessageEventContent, maxBytes int64) ([]byte, error) {
	if c == nil {
		return nil, errors.New("no message content")
	}
	if c.File == nil {
		uri, err := c.URL.Parse()
		if err != nil {
			return nil, fmt.Errorf("the message has no valid media URL: %w", err)
		}
		return in.DownloadMedia(ctx, uri, maxBytes)
	}
	uri, err := c.File.URL.Parse()
	if err != nil {
		return nil, fmt.Errorf("the encrypted file has no valid media URL: %w", err)
	}
	if err := c.File.PrepareForDecryption(); err != nil {
		return nil, fmt.Errorf("the encrypted file's keys are invalid: %w", err)
	}
	data, err := in.DownloadMedia(ctx, uri, maxBytes)
	if err != nil {
		return nil, err
	}
	if err := c.File.DecryptInPlace(data); err != nil {
		return nil, fmt.Errorf("failed to decrypt the file: %w", err)
	}
	return data, nil
}
