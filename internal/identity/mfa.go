package identity

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// totpPeriod is the TOTP time step (RFC 6238 default, what authenticator
// apps use).
const totpPeriod = 30

// sealer encrypts TOTP secrets at rest with AES-256-GCM: a database dump
// alone does not give away anyone's second factor.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("MFA key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte, userID string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, []byte(userID))
}

func (s *sealer) open(sealed []byte, userID string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed MFA secret too short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], []byte(userID))
}

// newTOTPKey returns a new TOTP key for the user, with its QR code.
func newTOTPKey(issuer, account string) (MFAEnrolment, []byte, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: totpPeriod, SecretSize: 20})
	if err != nil {
		return MFAEnrolment{}, nil, err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return MFAEnrolment{}, nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return MFAEnrolment{}, nil, err
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(key.Secret())
	if err != nil {
		return MFAEnrolment{}, nil, err
	}
	return MFAEnrolment{Secret: key.Secret(), OTPAuthURI: key.URL(),
		QRCodePNG: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, raw, nil
}

// matchTOTP returns the time step whose code equals code, allowing one
// step of clock drift either way, or -1.
func matchTOTP(secret []byte, code string, now time.Time) int64 {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return -1
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	step := now.Unix() / totpPeriod
	for _, s := range []int64{step - 1, step, step + 1} {
		want, err := totp.GenerateCodeCustom(enc, time.Unix(s*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s
		}
	}
	return -1
}

// TOTPCode returns the current code for a base32 secret (for tests and
// for documentation examples).
func TOTPCode(secret string, now time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, now, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// newRecoveryCodes returns n one-time codes like "k7f3-9qpx-2mdn" and
// their hashes.
func newRecoveryCodes(n int) ([]string, [][]byte) {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	codes := make([]string, n)
	hashes := make([][]byte, n)
	for i := range n {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		var sb strings.Builder
		for j, x := range b {
			if j > 0 && j%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(alphabet[int(x)%len(alphabet)])
		}
		codes[i] = sb.String()
		hashes[i] = recoveryHash(codes[i])
	}
	return codes, hashes
}

func recoveryHash(code string) []byte {
	c := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(code), " ", ""))
	sum := sha256.Sum256([]byte(c))
	return sum[:]
}

func looksLikeRecoveryCode(code string) bool {
	return strings.Count(code, "-") == 2 && len(strings.TrimSpace(code)) == 14
}
