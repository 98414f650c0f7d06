package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/cache"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/ratelimit"
)

// Hospital is what the load needs in a fresh database: a receptionist and
// a nurse with known passwords, a ward with one available bed per worker,
// and the keys every backend of the test shares.
type Hospital struct {
	Beds          []string
	users         map[string]string // username -> password
	keys, mfaKey  string
	desk, nurse   string
	deskTok, nTok string
}

// Seed creates the hospital through dbURL (PostgreSQL directly, as the
// schema owner).
func Seed(ctx context.Context, dbURL string, beds int) (*Hospital, error) {
	db, err := postgres.Open(ctx, dbURL, postgres.Options{MaxConns: 2, StatementTimeout: 30 * time.Second, ConnectTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	h := &Hospital{users: map[string]string{}, desk: "chaos.desk", nurse: "chaos.nurse"}
	if h.keys, err = identity.GenerateKeyPEM(); err != nil {
		return nil, err
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	h.mfaKey = base64.StdEncoding.EncodeToString(k)
	keys, err := identity.ParseKeys(h.keys)
	if err != nil {
		return nil, err
	}
	ids, err := identity.NewService(db, cache.NewMemory(100, nil), ratelimit.NewMemory(), keys,
		identity.Settings{Issuer: "hospital-erp", Audience: "hospital-erp-api", AccessTTL: 5 * time.Minute,
			IdleTimeout: 15 * time.Minute, MaxLifetime: 12 * time.Hour, MFAKey: k}, time.Now, identity.Observer{})
	if err != nil {
		return nil, err
	}
	for user, role := range map[string]string{h.desk: identity.RoleReceptionist, h.nurse: identity.RoleNurse} {
		pw := make([]byte, 16)
		_, _ = rand.Read(pw)
		h.users[user] = hex.EncodeToString(pw)
		if _, err := ids.CreateUserAsSystem(ctx, user, "Chaos "+role, role, "", h.users[user]); err != nil {
			return nil, fmt.Errorf("create %s: %w", user, err)
		}
	}
	q := db.Pool
	var dept, ward, room string
	if err := q.QueryRow(ctx, "INSERT INTO departments (code, name, kind) VALUES ('CHAOS', 'Resilience', 'clinical') RETURNING id").Scan(&dept); err != nil {
		return nil, err
	}
	if err := q.QueryRow(ctx, "INSERT INTO wards (department_id, code, name) VALUES ($1, 'CHAOS', 'Chaos ward') RETURNING id", dept).Scan(&ward); err != nil {
		return nil, err
	}
	if err := q.QueryRow(ctx, "INSERT INTO rooms (ward_id, code) VALUES ($1, 'CHAOS-R1') RETURNING id", ward).Scan(&room); err != nil {
		return nil, err
	}
	for i := range beds {
		var bed string
		if err := q.QueryRow(ctx, "INSERT INTO beds (room_id, code) VALUES ($1, $2) RETURNING id", room, fmt.Sprintf("CHAOS-%02d", i+1)).Scan(&bed); err != nil {
			return nil, err
		}
		h.Beds = append(h.Beds, bed)
	}
	return h, nil
}

// Env returns a backend's environment: the shared keys, dbURL (through
// PgBouncer), limits high enough for a load from one address, a short
// drain delay, plus extra.
func (h *Hospital) Env(dbURL string, extra map[string]string) map[string]string {
	env := map[string]string{
		"DATABASE_URL":             dbURL,
		"JWT_PRIVATE_KEYS":         h.keys,
		"MFA_ENCRYPTION_KEY":       h.mfaKey,
		"LOG_LEVEL":                "info",
		"DRAIN_DELAY":              "2s",
		"SHUTDOWN_TIMEOUT":         "10s",
		"DATABASE_CONNECT_TIMEOUT": "30s",
		"RATE_LIMIT_IP":            "1000000/1m",
		"RATE_LIMIT_USER":          "1000000/1m",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// SignIn signs the receptionist and the nurse in through base and fills
// a load's tokens.
func (h *Hospital) SignIn(ctx context.Context, base string, l *Load) error {
	for _, u := range []struct {
		name string
		tok  *string
	}{{h.desk, &l.Desk}, {h.nurse, &l.Nurse}} {
		t, err := client.New(base, nil).Login(ctx, u.name, h.users[u.name])
		if err != nil {
			return fmt.Errorf("sign in %s: %w", u.name, err)
		}
		*u.tok = t.AccessToken
	}
	l.Beds = h.Beds
	return nil
}

// LoginFrom signs user in through base from the loopback address ip (a
// client of its own for the per-IP login limit); rate-limit checks give a
// wrong password.
func LoginFrom(ctx context.Context, base, ip, user, password string) error {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
	_, err := client.New(base, &http.Client{Timeout: 10 * time.Second, Transport: tr}).Login(ctx, user, password)
	return err
}

// DeskUser is the receptionist's username.
func (h *Hospital) DeskUser() string { return h.desk }
