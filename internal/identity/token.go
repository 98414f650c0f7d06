package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Keys signs access tokens with the first Ed25519 key and verifies with
// any of them: to rotate, put the new key first and keep the old one until
// its tokens have expired.
type Keys struct {
	signer  ed25519.PrivateKey
	signKID string
	verify  map[string]ed25519.PublicKey
	order   []string

	// verified remembers tokens whose signature was checked, until they
	// expire: a client sends the same access token on every request, and an
	// Ed25519 verification costs more than the rest of a cached request.
	mu       sync.Mutex
	verified map[verifiedKey]claims
}

type verifiedKey struct{ token, issuer, audience string }

// maxVerified bounds the verified-token memory (about 1 KiB each).
const maxVerified = 50000

// ParseKeys reads one or more PEM "PRIVATE KEY" (PKCS#8 Ed25519) blocks.
func ParseKeys(pemData string) (*Keys, error) {
	k := &Keys{verify: map[string]ed25519.PublicKey{}}
	rest := []byte(pemData)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("JWT key: want PEM \"PRIVATE KEY\" (PKCS#8), got %q", block.Type)
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("JWT key: %w", err)
		}
		priv, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, errors.New("JWT key: only Ed25519 keys are accepted")
		}
		pub := priv.Public().(ed25519.PublicKey)
		kid := keyID(pub)
		if k.signer == nil {
			k.signer, k.signKID = priv, kid
		}
		if _, dup := k.verify[kid]; !dup {
			k.verify[kid] = pub
			k.order = append(k.order, kid)
		}
	}
	if k.signer == nil {
		return nil, errors.New("JWT key: no PEM private key found")
	}
	return k, nil
}

// GenerateKeyPEM returns a new Ed25519 private key as PKCS#8 PEM.
func GenerateKeyPEM() (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// JWK is one public key in a JWK set.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS is the public key set, served for other services that verify tokens.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the public keys.
func (k *Keys) JWKS() JWKS {
	out := JWKS{Keys: []JWK{}}
	for _, kid := range k.order {
		out.Keys = append(out.Keys, JWK{Kty: "OKP", Crv: "Ed25519", Kid: kid, Use: "sig", Alg: "EdDSA",
			X: base64.RawURLEncoding.EncodeToString(k.verify[kid])})
	}
	return out
}

// claims are the access token's claims.
type claims struct {
	SessionID string `json:"sid"`
	Role      string `json:"role"`
	jwt.RegisteredClaims
}

func (k *Keys) sign(c claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.signKID
	return t.SignedString(crypto.Signer(k.signer))
}

// parse verifies signature, algorithm, issuer, audience and expiry.
func (k *Keys) parse(token, issuer, audience string, now func() time.Time) (*claims, error) {
	key := verifiedKey{token, issuer, audience}
	k.mu.Lock()
	c, ok := k.verified[key]
	k.mu.Unlock()
	if ok {
		if c.ExpiresAt != nil && now().Before(c.ExpiresAt.Add(5*time.Second)) {
			return &c, nil
		}
		k.mu.Lock()
		delete(k.verified, key)
		k.mu.Unlock()
	}
	v, err := k.verifyToken(token, issuer, audience, now)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.verified == nil || len(k.verified) >= maxVerified {
		k.verified = make(map[verifiedKey]claims) // the busy tokens come back at once
	}
	k.verified[key] = *v
	k.mu.Unlock()
	return v, nil
}

// verifyToken checks the signature and every claim.
func (k *Keys) verifyToken(token, issuer, audience string, now func() time.Time) (*claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, ok := k.verify[kid]
		if !ok {
			return nil, errors.New("unknown key id")
		}
		return pub, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(5*time.Second),
		jwt.WithTimeFunc(now),
	)
	if err != nil {
		return nil, err
	}
	return &c, nil
}
