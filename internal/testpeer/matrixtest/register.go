package matrixtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// RegisterWithSecret registers a user at the homeserver at baseURL (Synapse, or Dendrite, which serves the same API) through the shared-secret
// registration API with secret and returns a client logged in as that user. An existing
// user gives an error wrapping mautrix.MUserInUse.
func RegisterWithSecret(ctx context.Context, baseURL, secret, localpart, password string, admin bool) (*mautrix.Client, error) {
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	if err := adminRegister(ctx, baseURL, http.MethodGet, nil, &nonce); err != nil {
		return nil, fmt.Errorf("failed to get a registration nonce: %w", err)
	}
	role := "notadmin"
	if admin {
		role = "admin"
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(nonce.Nonce + "\x00" + localpart + "\x00" + password + "\x00" + role))
	req := map[string]any{
		"nonce":    nonce.Nonce,
		"username": localpart,
		"password": password,
		"admin":    admin,
		"mac":      hex.EncodeToString(mac.Sum(nil)),
	}
	var resp struct {
		UserID      id.UserID   `json:"user_id"`
		AccessToken string      `json:"access_token"`
		DeviceID    id.DeviceID `json:"device_id"`
	}
	if err := adminRegister(ctx, baseURL, http.MethodPost, req, &resp); err != nil {
		return nil, fmt.Errorf("failed to register %q: %w", localpart, err)
	}
	cli, err := mautrix.NewClient(baseURL, resp.UserID, resp.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("failed to create client: %w", err)
	}
	cli.DeviceID = resp.DeviceID
	return cli, nil
}

// adminRegister calls /_synapse/admin/v1/register and decodes the JSON answer into out.
func adminRegister(ctx context.Context, baseURL, method string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+"/_synapse/admin/v1/register", body)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var merr mautrix.RespError
		if json.Unmarshal(b, &merr) == nil && merr.ErrCode != "" {
			return fmt.Errorf("HTTP %d: %w", resp.StatusCode, merr)
		}
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return json.Unmarshal(b, out)
}
