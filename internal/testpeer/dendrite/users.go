package dendrite

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
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// RegisterUser registers a normal user through open registration (/register with the
// m.login.dummy flow) and returns a client logged in as that user.
func (s *Server) RegisterUser(ctx context.Context, localpart, password string) (*mautrix.Client, error) {
	cli, err := mautrix.NewClient(s.URL, "", "")
	if err != nil {
		return nil, fmt.Errorf("dendrite: failed to create client: %w", err)
	}
	resp, err := cli.RegisterDummy(ctx, &mautrix.ReqRegister[any]{
		Username:                 localpart,
		Password:                 password,
		InitialDeviceDisplayName: "switchboard test",
	})
	if err != nil {
		return nil, fmt.Errorf("dendrite: failed to register %q: %w", localpart, err)
	}
	cli.UserID, cli.AccessToken, cli.DeviceID = resp.UserID, resp.AccessToken, resp.DeviceID
	return cli, nil
}

// RegisterAdmin registers a server admin through the shared-secret registration API
// (/_synapse/admin/v1/register) and returns a client logged in as that user.
func (s *Server) RegisterAdmin(ctx context.Context, localpart, password string) (*mautrix.Client, error) {
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	if err := s.adminRegister(ctx, http.MethodGet, nil, &nonce); err != nil {
		return nil, fmt.Errorf("dendrite: failed to get a registration nonce: %w", err)
	}
	mac := hmac.New(sha1.New, []byte(s.RegistrationSharedSecret))
	mac.Write([]byte(nonce.Nonce + "\x00" + localpart + "\x00" + password + "\x00admin"))
	req := map[string]any{
		"nonce":    nonce.Nonce,
		"username": localpart,
		"password": password,
		"admin":    true,
		"mac":      hex.EncodeToString(mac.Sum(nil)),
	}
	var resp struct {
		UserID      id.UserID   `json:"user_id"`
		AccessToken string      `json:"access_token"`
		DeviceID    id.DeviceID `json:"device_id"`
	}
	if err := s.adminRegister(ctx, http.MethodPost, req, &resp); err != nil {
		return nil, fmt.Errorf("dendrite: failed to register admin %q: %w", localpart, err)
	}
	cli, err := mautrix.NewClient(s.URL, resp.UserID, resp.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("dendrite: failed to create client: %w", err)
	}
	cli.DeviceID = resp.DeviceID
	return cli, nil
}

// adminRegister calls /_synapse/admin/v1/register and decodes the JSON answer into out.
func (s *Server) adminRegister(ctx context.Context, method string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+"/_synapse/admin/v1/register", body)
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

var uniqueCounter atomic.Int64

// Unique returns prefix with a suffix unique in the test run (users and rooms outlive
// single tests on a shared homeserver).
func Unique(prefix string) string {
	return fmt.Sprintf("%s%d%d", prefix, time.Now().UnixNano()%1e6, uniqueCounter.Add(1))
}

// NewUser registers a new user whose localpart starts with prefix and returns its client;
// it fails t when that does not work.
func (s *Server) NewUser(t testing.TB, prefix string) *mautrix.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := Unique(prefix)
	cli, err := s.RegisterUser(ctx, name, "password-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return cli
}
