package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/cache"
	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
	"github.com/hospital-erp/hospital-erp/internal/ratelimit"
)

// Settings of the service, from configuration.
type Settings struct {
	Issuer          string
	Audience        string
	AccessTTL       time.Duration
	IdleTimeout     time.Duration
	MaxLifetime     time.Duration
	LoginRate       config.Rate
	SessionCacheTTL time.Duration
}

// Service signs users in and authenticates their requests.
type Service struct {
	db       *postgres.DB
	cache    cache.Cache
	limiter  ratelimit.Limiter
	keys     *Keys
	set      Settings
	now      hospital.Clock
	rejected func(scope string)
}

// NewService wires the service. rejected counts login throttling (metrics).
func NewService(db *postgres.DB, c cache.Cache, l ratelimit.Limiter, keys *Keys, s Settings, now hospital.Clock, rejected func(string)) *Service {
	if s.SessionCacheTTL == 0 {
		s.SessionCacheTTL = 5 * time.Second
	}
	if rejected == nil {
		rejected = func(string) {}
	}
	return &Service{db: db, cache: c, limiter: l, keys: keys, set: s, now: now, rejected: rejected}
}

// Keys returns the signing keys (for the JWKS endpoint).
func (s *Service) Keys() *Keys { return s.keys }

var errBadLogin = hospital.Errorf(hospital.EUNAUTHORIZED, "Wrong username or password.")

// Login checks the password and opens a session. Returns EUNAUTHORIZED for
// a wrong name or password (the same message for both), ETOOMANY when the
// client IP or the username has tried too often.
func (s *Service) Login(ctx context.Context, req LoginRequest, clientIP, userAgent string) (TokenResponse, string, error) {
	var v hospital.Validation
	v.Check(strings.TrimSpace(req.Username) != "", "username", "is required")
	v.Check(req.Password != "", "password", "is required")
	v.Check(len(req.Username) <= 64, "username", "is too long")
	v.Check(len(req.Password) <= 1024, "password", "is too long")
	if err := v.Err(); err != nil {
		return TokenResponse{}, "", err
	}
	username := strings.ToLower(strings.TrimSpace(req.Username))
	for _, key := range []string{"login:ip:" + clientIP, "login:user:" + username} {
		if res := s.limiter.Allow(ctx, key, s.set.LoginRate); !res.Allowed {
			s.rejected("login")
			return TokenResponse{}, "", &hospital.Error{Code: hospital.ETOOMANY, RetryAfter: res.RetryAfter,
				Message: "Too many sign-in attempts. Wait a moment and try again."}
		}
	}
	row, err := s.db.Queries().UserGetByUsername(ctx, username)
	if err = postgres.Translate(err); err != nil && hospital.ErrorCode(err) != hospital.ENOTFOUND {
		return TokenResponse{}, "", err
	}
	hash := dummyHash
	if err == nil {
		hash = row.PasswordHash
	}
	ok, herr := CheckPassword(hash, req.Password)
	if err != nil || herr != nil || !ok || !row.Active {
		s.recordFailure(ctx, row.ID, err == nil, username)
		return TokenResponse{}, "", errBadLogin
	}
	now := s.now()
	var tok TokenResponse
	var refresh string
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		sess, err := q.SessionCreate(ctx, dbgen.SessionCreateParams{UserID: row.ID, ExpiresAt: now.Add(s.set.MaxLifetime),
			ClientIp: clientIP, UserAgent: truncate(userAgent, 512)})
		if err != nil {
			return err
		}
		if refresh, err = s.newRefreshToken(ctx, q, sess.ID); err != nil {
			return err
		}
		if tok, err = s.accessToken(row.ID, sess.ID, row.Role, now); err != nil {
			return err
		}
		uid := row.ID
		return audit.Write(ctx, q, audit.Entry{Action: "auth.login", EntityType: "session", EntityID: sess.ID.String(), ActorID: &uid})
	})
	if err != nil {
		return TokenResponse{}, "", fmt.Errorf("login: %w", err)
	}
	return tok, refresh, nil
}

func (s *Service) recordFailure(ctx context.Context, userID uuid.UUID, known bool, username string) {
	var actor *uuid.UUID
	if known {
		actor = &userID
	}
	_ = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		return audit.Write(ctx, q, audit.Entry{Action: "auth.login_failed", EntityType: "user",
			ActorID: actor, Details: map[string]any{"username": truncate(username, 64)}})
	})
}

// Refresh exchanges a refresh token for a new access token and a new
// refresh token. A refresh token works once; a second use revokes the whole
// session (the token was copied). Returns EUNAUTHORIZED when the token or
// its session is not valid.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (TokenResponse, string, error) {
	if refreshToken == "" || len(refreshToken) > 200 {
		return TokenResponse{}, "", hospital.Errorf(hospital.EUNAUTHORIZED, "The refresh token is not valid.")
	}
	sum := sha256.Sum256([]byte(refreshToken))
	now := s.now()
	var tok TokenResponse
	var next string
	var reused bool
	var sessID uuid.UUID
	err := s.db.InTx(ctx, func(q *dbgen.Queries) error {
		use, err := q.RefreshTokenUse(ctx, sum[:])
		if err != nil {
			return err
		}
		sessID = use.SessionID
		if use.Reused {
			reused = true
			_, err := q.SessionRevoke(ctx, dbgen.SessionRevokeParams{ID: use.SessionID, RevokeReason: ptr("refresh token reused")})
			if err != nil {
				return err
			}
			return audit.Write(ctx, q, audit.Entry{Action: "auth.refresh_reuse", EntityType: "session", EntityID: use.SessionID.String()})
		}
		sess, err := q.SessionGet(ctx, use.SessionID)
		if err != nil {
			return err
		}
		if reason := sessionProblem(sess, now, s.set.IdleTimeout); reason != "" {
			return hospital.Errorf(hospital.EUNAUTHORIZED, "Your session has ended (%s). Please sign in again.", reason)
		}
		if next, err = s.newRefreshToken(ctx, q, sess.ID); err != nil {
			return err
		}
		if err := q.SessionTouch(ctx, sess.ID); err != nil {
			return err
		}
		tok, err = s.accessToken(sess.UserID, sess.ID, sess.Role, now)
		return err
	})
	if reused {
		s.cache.Delete(ctx, sessionKey(sessID))
		return TokenResponse{}, "", hospital.Errorf(hospital.EUNAUTHORIZED, "This refresh token was already used; the session has been ended for safety.")
	}
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return TokenResponse{}, "", hospital.Errorf(hospital.EUNAUTHORIZED, "The refresh token is not valid.")
	}
	if err != nil {
		return TokenResponse{}, "", err
	}
	return tok, next, nil
}

func (s *Service) newRefreshToken(ctx context.Context, q *dbgen.Queries, session uuid.UUID) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, q.RefreshTokenCreate(ctx, dbgen.RefreshTokenCreateParams{TokenHash: sum[:], SessionID: session})
}

func (s *Service) accessToken(user, session uuid.UUID, role string, now time.Time) (TokenResponse, error) {
	tok, err := s.keys.sign(claims{SessionID: session.String(), Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: s.set.Issuer, Subject: user.String(), Audience: jwt.ClaimStrings{s.set.Audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.set.AccessTTL)), ID: uuid.NewString(),
	}})
	if err != nil {
		return TokenResponse{}, err
	}
	return TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.set.AccessTTL.Seconds())}, nil
}

// cachedSession is what the per-request check needs, cached for a few
// seconds so that most requests do not touch the database, and deleted on
// logout or revocation.
type cachedSession struct {
	UserID       string     `json:"user_id"`
	Username     string     `json:"username"`
	Role         string     `json:"role"`
	DepartmentID string     `json:"department_id"`
	Active       bool       `json:"active"`
	ExpiresAt    time.Time  `json:"expires_at"`
	LastSeenAt   time.Time  `json:"last_seen_at"`
	RevokedAt    *time.Time `json:"revoked_at"`
}

func sessionKey(id uuid.UUID) string { return "session:" + id.String() }

// Authenticate turns a bearer access token into the request's actor.
// Returns EUNAUTHORIZED when the token is invalid or expired, or its
// session was ended (logout, idle time-out, revocation, user disabled).
func (s *Service) Authenticate(ctx context.Context, token string) (*hospital.Actor, error) {
	return s.authenticate(ctx, token, s.set.Audience)
}

func (s *Service) authenticate(ctx context.Context, token, audience string) (*hospital.Actor, error) {
	c, err := s.keys.parse(token, s.set.Issuer, audience)
	if err != nil {
		msg := "The access token is not valid."
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "The access token has expired."
		}
		return nil, hospital.Wrap(hospital.EUNAUTHORIZED, err, "%s", msg)
	}
	sid, err := uuid.Parse(c.SessionID)
	if err != nil {
		return nil, hospital.Errorf(hospital.EUNAUTHORIZED, "The access token is not valid.")
	}
	sess, err := cache.GetOrLoad(ctx, s.cache, sessionKey(sid), s.set.SessionCacheTTL, func() (cachedSession, error) {
		row, err := s.db.Queries().SessionGet(ctx, sid)
		if err != nil {
			return cachedSession{}, postgres.Translate(err)
		}
		cs := cachedSession{UserID: row.UserID.String(), Username: row.Username, Role: row.Role, Active: row.Active,
			ExpiresAt: row.ExpiresAt, LastSeenAt: row.LastSeenAt, RevokedAt: row.RevokedAt}
		if row.DepartmentID != nil {
			cs.DepartmentID = row.DepartmentID.String()
		}
		return cs, nil
	})
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return nil, hospital.Errorf(hospital.EUNAUTHORIZED, "The session does not exist.")
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	if reason := cachedProblem(sess, now, s.set.IdleTimeout); reason != "" {
		return nil, hospital.Errorf(hospital.EUNAUTHORIZED, "Your session has ended (%s). Please sign in again.", reason)
	}
	if now.Sub(sess.LastSeenAt) > 30*time.Second {
		// Keep the idle clock running; errors only mean a later time-out.
		if err := s.db.Queries().SessionTouch(ctx, sid); err == nil {
			s.cache.Delete(ctx, sessionKey(sid))
		}
	}
	return &hospital.Actor{UserID: sess.UserID, Username: sess.Username, Role: sess.Role, DepartmentID: sess.DepartmentID,
		SessionID: sid.String(), Permissions: PermissionSet(sess.Role)}, nil
}

func cachedProblem(s cachedSession, now time.Time, idle time.Duration) string {
	switch {
	case s.RevokedAt != nil:
		return "signed out"
	case !s.Active:
		return "account disabled"
	case now.After(s.ExpiresAt):
		return "maximum session length reached"
	case idle > 0 && now.Sub(s.LastSeenAt) > idle:
		return "inactive too long"
	}
	return ""
}

func sessionProblem(r dbgen.SessionGetRow, now time.Time, idle time.Duration) string {
	return cachedProblem(cachedSession{Active: r.Active, ExpiresAt: r.ExpiresAt, LastSeenAt: r.LastSeenAt, RevokedAt: r.RevokedAt}, now, idle)
}

// Logout ends the caller's session. Returns EUNAUTHORIZED when anonymous.
func (s *Service) Logout(ctx context.Context) error {
	a := hospital.ActorFrom(ctx)
	if a == nil {
		return hospital.Errorf(hospital.EUNAUTHORIZED, "Authentication required.")
	}
	sid, _ := uuid.Parse(a.SessionID)
	err := s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if _, err := q.SessionRevoke(ctx, dbgen.SessionRevokeParams{ID: sid, RevokeReason: ptr("logout")}); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "auth.logout", EntityType: "session", EntityID: a.SessionID})
	})
	s.cache.Delete(ctx, sessionKey(sid))
	return err
}

// Me returns the signed-in user. Returns EUNAUTHORIZED when anonymous.
func (s *Service) Me(ctx context.Context) (Me, error) {
	a := hospital.ActorFrom(ctx)
	if a == nil {
		return Me{}, hospital.Errorf(hospital.EUNAUTHORIZED, "Authentication required.")
	}
	uid, _ := uuid.Parse(a.UserID)
	row, err := s.db.Queries().UserGet(ctx, uid)
	if err != nil {
		return Me{}, postgres.Translate(err)
	}
	sid, _ := uuid.Parse(a.SessionID)
	sess, err := s.db.Queries().SessionGet(ctx, sid)
	if err != nil {
		return Me{}, postgres.Translate(err)
	}
	me := Me{User: userFromRow(row), Permissions: append([]string(nil), RolePermissions[row.Role]...), SessionID: a.SessionID, ExpiresAt: sess.ExpiresAt}
	return me, nil
}

// IssueTicket returns a 60-second token that opens the event WebSocket for
// the caller's session.
func (s *Service) IssueTicket(ctx context.Context) (Ticket, error) {
	a := hospital.ActorFrom(ctx)
	if a == nil {
		return Ticket{}, hospital.Errorf(hospital.EUNAUTHORIZED, "Authentication required.")
	}
	now := s.now()
	tok, err := s.keys.sign(claims{SessionID: a.SessionID, Role: a.Role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: s.set.Issuer, Subject: a.UserID, Audience: jwt.ClaimStrings{s.set.Audience + "/events"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(60 * time.Second)), ID: uuid.NewString(),
	}})
	if err != nil {
		return Ticket{}, err
	}
	return Ticket{Ticket: tok, ExpiresIn: 60}, nil
}

// AuthenticateTicket checks a WebSocket ticket like an access token.
func (s *Service) AuthenticateTicket(ctx context.Context, ticket string) (*hospital.Actor, error) {
	return s.authenticate(ctx, ticket, s.set.Audience+"/events")
}

// CreateUser adds a user. Returns EINVALID for a bad name, role or
// password, ECONFLICT when the username is taken.
func (s *Service) CreateUser(ctx context.Context, username, displayName, role, departmentID, password string) (User, error) {
	var v hospital.Validation
	username = strings.ToLower(strings.TrimSpace(username))
	v.Check(validUsername(username), "username", "must be 3-64 characters: lowercase letters, digits, . _ -")
	v.Check(strings.TrimSpace(displayName) != "" && len(displayName) <= 200, "display_name", "is required (at most 200 characters)")
	_, known := RolePermissions[role]
	v.Check(known, "role", "must be one of "+strings.Join(Roles(), ", "))
	if p := PasswordProblem(password); p != "" {
		v.Add("password", p)
	}
	var dept *uuid.UUID
	if departmentID != "" {
		id, err := uuid.Parse(departmentID)
		v.Check(err == nil, "department_id", "must be a department id")
		dept = &id
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return User{}, err
	}
	var u User
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		row, err := q.UserCreate(ctx, dbgen.UserCreateParams{Username: username, DisplayName: strings.TrimSpace(displayName),
			Role: role, DepartmentID: dept, PasswordHash: hash})
		if err != nil {
			return err
		}
		u = userFromRow(row)
		return audit.Write(ctx, q, audit.Entry{Action: "user.create", EntityType: "user", EntityID: row.ID.String(),
			Details: map[string]any{"role": role}})
	})
	if hospital.ErrorCode(err) == hospital.ECONFLICT {
		return User{}, &hospital.Error{Code: hospital.ECONFLICT, Message: "This username is taken.",
			Fields: map[string]string{"username": "is taken"}, Err: err}
	}
	return u, err
}

func validUsername(s string) bool {
	if len(s) < 3 || len(s) > 64 {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '.' || c == '_' || c == '-'))
		if !ok {
			return false
		}
	}
	return true
}

func userFromRow(r dbgen.User) User {
	u := User{ID: r.ID.String(), Username: r.Username, DisplayName: r.DisplayName, Role: r.Role, Active: r.Active, CreatedAt: r.CreatedAt}
	if r.DepartmentID != nil {
		u.DepartmentID = r.DepartmentID.String()
	}
	return u
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func ptr[T any](v T) *T { return &v }
