package refucrm

import (
	"bytes"
	"context"
	"crypto/rsa"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// cryptoScript is crypto.mjs's name in the express-js directory of a tree.
const cryptoScript = "switchboard-crypto.mjs"

//go:embed crypto.mjs
var cryptoJS []byte

// ErrRefused wraps the reference's reason when its code refuses a signature.
var ErrRefused = errors.New("refucrm: the reference refused the signature")

type cryptoRequest struct {
	Op       string           `json:"op"`
	Envelope ucri.SendRequest `json:"envelope"`
	Key      json.RawMessage  `json:"key"`
}

type cryptoResponse struct {
	OK        bool   `json:"ok"`
	Error     string `json:"error"`
	Hash      string `json:"hash"`
	Signature string `json:"signature"`
}

// Verify checks env.Signature for the destinations with the reference's own code
// (verifyEnvelope of shared-js/crypto.js) and the sender's public key. A refused signature
// is an error wrapping ErrRefused with the reference's reason. It returns the hash the
// reference computed.
func (s *Server) Verify(ctx context.Context, env ucri.Envelope, destinations []string, pub *rsa.PublicKey) (hash string, err error) {
	key, err := publicJWK(pub)
	if err != nil {
		return "", err
	}
	resp, err := s.runCrypto(ctx, cryptoRequest{Op: "verify", Envelope: ucri.SendRequest{Envelope: env, Destinations: destinations}, Key: key})
	if err != nil {
		return "", err
	}
	if !resp.OK {
		return resp.Hash, fmt.Errorf("%w: %s", ErrRefused, resp.Error)
	}
	return resp.Hash, nil
}

// Sign signs env for the destinations with the reference's own code
// (getEnvelopeSignature of shared-js/crypto.js) and returns the signature.
func (s *Server) Sign(ctx context.Context, env ucri.Envelope, destinations []string, key *rsa.PrivateKey) (string, error) {
	jwk, err := json.Marshal(jose.JSONWebKey{Key: key, Algorithm: string(jose.RS256)})
	if err != nil {
		return "", fmt.Errorf("refucrm: %w", err)
	}
	resp, err := s.runCrypto(ctx, cryptoRequest{Op: "sign", Envelope: ucri.SendRequest{Envelope: env, Destinations: destinations}, Key: jwk})
	if err != nil {
		return "", err
	}
	if !resp.OK {
		return "", fmt.Errorf("refucrm: the reference could not sign: %s", resp.Error)
	}
	return resp.Signature, nil
}

// runCrypto runs crypto.mjs in the server's tree.
func (s *Server) runCrypto(ctx context.Context, req cryptoRequest) (cryptoResponse, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return cryptoResponse{}, fmt.Errorf("refucrm: %w", err)
	}
	cmd := exec.CommandContext(ctx, "node", cryptoScript)
	cmd.Dir = filepath.Join(s.Dir, expressDir)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return cryptoResponse{}, fmt.Errorf("refucrm: node %s: %w\n%s", cryptoScript, err, peerproc.Tail(stderr.Bytes(), 20))
	}
	var resp cryptoResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return cryptoResponse{}, fmt.Errorf("refucrm: node %s answered %q: %w", cryptoScript, stdout.String(), err)
	}
	return resp, nil
}

// publicJWK is pub as a JWK {kty, n, e}, as the registry carries it.
func publicJWK(pub *rsa.PublicKey) (json.RawMessage, error) {
	if pub == nil {
		return nil, errors.New("refucrm: no public key")
	}
	return json.Marshal(ucri.JWKFromPublicKey(pub))
}
