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
	Issuer      string
	Audience    string
	AccessTTL   time.Duration
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	// LoginRate limits sign-in attempts per client IP.
	LoginRate config.Rate
	// FailuresPerAccountIP limits failed sign-ins per account from one IP:
	// it stops guessing without locking the real user out from elsewhere.
	FailuresPerAccountIP config.Rate
	// FailuresPerAccount limits failed sign-ins per account from anywhere
	// (distributed guessing). It only delays, for at most its period.
	FailuresPerAccount config.Rate
	SessionCacheTTL    time.Duration
	// RefreshReuseGrace: a refresh token presented again this soon after its
	// first use is taken as two tabs or pods refreshing at once and gets new
	// tokens; later reuse means theft and revokes the session.
	RefreshReuseGrace time.Duration
	// MFAKey encrypts TOTP secrets at rest (32 bytes).
	MFAKey []byte
	// MFAIssuer is the name authenticator apps show.
	MFAIssuer string
}

// Observer receives sign-in outcomes for metrics.
type Observer struct {
	Login    func(result string) // "success", "failure", "throttled", "mfa_required"
	Rejected func(scope string)  // rate-limit scope
}

// Service signs users in, authenticates their requests and manages users.
type Service struct {
	db      *postgres.DB
	cache   cache.Cache
	limiter ratelimit.Limiter
	keys    *Keys
	set     Settings
	now     hospital.Clock
	obs     Observer
	mfa     *sealer
}

// NewService wires the service.
func NewService(db *postgres.DB, c cache.Cache, l ratelimit.Limiter, keys *Keys, s Settings, now hospital.Clock, obs Observer) (*Service, error) {
	if s.SessionCacheTTL == 0 {
		s.SessionCacheTTL = 5 * time.Second
	}
	if s.FailuresPerAccountIP.N == 0 {
		s.FailuresPerAccountIP = config.Rate{N: 5, Period: 15 * time.Minute}
	}
	if s.FailuresPerAccount.N == 0 {
		s.FailuresPerAccount = config.Rate{N: 50, Period: time.Hour}
	}
	if s.MFAIssuer == "" {
		s.MFAIssuer = "Hospital ERP"
	}
	if obs.Login == nil {
		obs.Login = func(string) {}
	}
	if obs.Rejected == nil {
		obs.Rejected = func(string) {}
	}
	m, err := newSealer(s.MFAKey)
	if err != nil {
		return nil, err
	}
	return &Service{db: db, cache: c, limiter: l, keys: keys, set: s, now: now, obs: obs, mfa: m}, nil
}

// Keys returns the signing keys (for the JWKS endpoint).
func (s *Service) Keys() *Keys { return s.keys }

var errBadLogin = hospital.Errorf(hospital.EUNAUTHORIZED, "Wrong username or password.")

// Login checks the password (and the second factor for users with MFA)
// and opens a session. Returns EUNAUTHORIZED for a wrong name or password
// (the same message for both), EMFAREQUIRED when the one-time code is
// missing or wrong, ETOOMANY when the client IP or the account has failed
// too often.
func (s *Service) Login(ctx context.Context, req LoginRequest, clientIP, userAgent string) (TokenResponse, string, error) {
	var v hospital.Validation
	v.Check(strings.TrimSpace(req.Username) != "", "username", "is required")
	v.Check(req.Password != "", "password", "is required")
	v.Check(len(req.Username) <= 64, "username", "is too long")
	v.Check(len(req.Password) <= 1024, "password", "is too long")
	v.Check(len(req.OTP) <= 32, "otp", "is too long")
	if err := v.Err(); err != nil {
		return TokenResponse{}, "", err
	}
	username := strings.ToLower(strings.TrimSpace(req.Username))
	acctIP := "login:fail:" + username + "|" + clientIP
	acct := "login:fail:" + username
	if res := s.limiter.Allow(ctx, "login:ip:"+clientIP, s.set.LoginRate); !res.Allowed {
		return TokenResponse{}, "", s.throttled(res.RetryAfter)
	}
	select {
	case signIns <- struct{}{}:
		defer func() { <-signIns }()
	default:
		s.obs.Login("busy")
		return TokenResponse{}, "", hashBusy(tooManySignIns, errSignIns)
	}
	for _, k := range []struct {
		key  string
		rate config.Rate
	}{{acctIP, s.set.FailuresPerAccountIP}, {acct, s.set.FailuresPerAccount}} {
		if res := s.limiter.Peek(ctx, k.key, k.rate); !res.Allowed {
			return TokenResponse{}, "", s.throttled(res.RetryAfter)
		}
	}
	fail := func(userID *uuid.UUID, role, reason string) error {
		s.limiter.Allow(ctx, acctIP, s.set.FailuresPerAccountIP)
		s.limiter.Allow(ctx, acct, s.set.FailuresPerAccount)
		s.obs.Login("failure")
		_ = audit.Record(ctx, s.db, audit.Entry{Action: "auth.login", ResourceType: "user", Outcome: audit.Denied,
			ActorID: userID, ActorRole: role, Details: map[string]any{"username": hospital.Truncate(username, 64), "reason": reason}})
		return errBadLogin
	}
	row, err := s.db.Queries().UserGetByUsername(ctx, username)
	if err = postgres.Translate(err); err != nil && hospital.ErrorCode(err) != hospital.ENOTFOUND {
		return TokenResponse{}, "", err
	}
	known := err == nil
	hash := dummyHash
	if known {
		hash = row.PasswordHash
	}
	ok, herr := CheckPassword(ctx, hash, req.Password)
	switch {
	case hospital.ErrorCode(herr) == hospital.EUNAVAILABLE:
		return TokenResponse{}, "", herr // waited too long to hash: not a failed attempt
	case !known:
		return TokenResponse{}, "", fail(nil, "", "unknown user")
	case herr != nil || !ok:
		return TokenResponse{}, "", fail(&row.ID, row.Role, "wrong password")
	case !row.Active:
		return TokenResponse{}, "", fail(&row.ID, row.Role, "account disabled")
	}
	mfaVerified := false
	if row.MfaSecretEnc != nil {
		if strings.TrimSpace(req.OTP) == "" {
			s.obs.Login("mfa_required")
			return TokenResponse{}, "", hospital.Errorf(hospital.EMFAREQUIRED, "Enter the 6-digit code from your authenticator app, or a recovery code.")
		}
		if err := s.checkSecondFactor(ctx, row, req.OTP); err != nil {
			s.limiter.Allow(ctx, acctIP, s.set.FailuresPerAccountIP)
			s.limiter.Allow(ctx, acct, s.set.FailuresPerAccount)
			s.obs.Login("failure")
			_ = audit.Record(ctx, s.db, audit.Entry{Action: "auth.login", ResourceType: "user", Outcome: audit.Denied,
				ActorID: &row.ID, ActorRole: row.Role, Details: map[string]any{"reason": "wrong second factor"}})
			return TokenResponse{}, "", err
		}
		mfaVerified = true
	}
	now := s.now()
	var tok TokenResponse
	var refresh string
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		sess, err := q.SessionCreate(ctx, dbgen.SessionCreateParams{UserID: row.ID, ExpiresAt: now.Add(s.set.MaxLifetime),
			ClientIp: clientIP, UserAgent: hospital.Truncate(userAgent, 512), MfaVerified: mfaVerified})
		if err != nil {
			return err
		}
		if err := q.UserLoggedIn(ctx, row.ID); err != nil {
			return err
		}
		if refresh, err = s.newRefreshToken(ctx, q, sess.ID); err != nil {
			return err
		}
		if tok, err = s.accessToken(row.ID, sess.ID, row.Role, now); err != nil {
			return err
		}
		uid := row.ID
		return audit.Write(ctx, q, audit.Entry{Action: "auth.login", ResourceType: "session", ResourceID: sess.ID.String(),
			ActorID: &uid, ActorRole: row.Role, Details: map[string]any{"mfa": mfaVerified}})
	})
	if err != nil {
		return TokenResponse{}, "", fmt.Errorf("login: %w", err)
	}
	s.limiter.Reset(ctx, acctIP)
	s.obs.Login("success")
	return tok, refresh, nil
}

func (s *Service) throttled(retry time.Duration) error {
	s.obs.Rejected("login")
	s.obs.Login("throttled")
	return &hospital.Error{Code: hospital.ETOOMANY, RetryAfter: max(retry, time.Second),
		Message: "Too many sign-in attempts. Wait a moment and try again."}
}

// checkSecondFactor accepts a current TOTP code that was not used before,
// or an unused recovery code.
func (s *Service) checkSecondFactor(ctx context.Context, u dbgen.User, code string) error {
	bad := hospital.Errorf(hospital.EMFAREQUIRED, "The code is not valid. Enter a current code from your authenticator app, or a recovery code.")
	if looksLikeRecoveryCode(code) {
		n, err := s.db.Queries().RecoveryCodeUse(ctx, dbgen.RecoveryCodeUseParams{UserID: u.ID, CodeHash: recoveryHash(code)})
		if err != nil {
			return postgres.Translate(err)
		}
		if n != 1 {
			return bad
		}
		_ = audit.Record(ctx, s.db, audit.Entry{Action: "auth.recovery_code_used", ResourceType: "user", ResourceID: u.ID.String(),
			ActorID: &u.ID, ActorRole: u.Role})
		return nil
	}
	secret, err := s.mfa.open(u.MfaSecretEnc, u.ID.String())
	if err != nil {
		return fmt.Errorf("open MFA secret: %w", err)
	}
	step := matchTOTP(secret, code, s.now())
	if step < 0 {
		return bad
	}
	// A code is good for one use: the step must be later than the last used.
	n, err := s.db.Queries().UserMFAUseStep(ctx, dbgen.UserMFAUseStepParams{ID: u.ID, MfaLastStep: step})
	if err != nil {
		return postgres.Translate(err)
	}
	if n != 1 {
		return hospital.Errorf(hospital.EMFAREQUIRED, "This code was already used. Wait for the next code and try again.")
	}
	return nil
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
		use, err := q.RefreshTokenUse(ctx, dbgen.RefreshTokenUseParams{TokenHash: sum[:], GraceSeconds: s.set.RefreshReuseGrace.Seconds()})
		if err != nil {
			return err
		}
		sessID = use.SessionID
		if use.Reused && !use.WithinGrace {
			reused = true
			if _, err := q.SessionRevoke(ctx, dbgen.SessionRevokeParams{ID: use.SessionID, RevokeReason: ptr("refresh token reused")}); err != nil {
				return err
			}
			return audit.Write(ctx, q, audit.Entry{Action: "auth.refresh_reuse", ResourceType: "session",
				ResourceID: use.SessionID.String(), Outcome: audit.Denied})
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
// logout, revocation, disabling and role changes.
type cachedSession struct {
	UserID       string     `json:"user_id"`
	Username     string     `json:"username"`
	Role         string     `json:"role"`
	DepartmentID string     `json:"department_id"`
	WardIDs      []string   `json:"ward_ids"`
	Active       bool       `json:"active"`
	MFAEnabled   bool       `json:"mfa_enabled"`
	MFAVerified  bool       `json:"mfa_verified"`
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
	c, err := s.keys.parse(token, s.set.Issuer, audience, s.now)
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
	sess, err := s.session(ctx, sid)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if reason := cachedProblem(sess, now, s.set.IdleTimeout); reason != "" {
		return nil, hospital.Errorf(hospital.EUNAUTHORIZED, "Your session has ended (%s). Please sign in again.", reason)
	}
	if sess.UserID != c.Subject {
		return nil, hospital.Errorf(hospital.EUNAUTHORIZED, "The access token is not valid.")
	}
	if now.Sub(sess.LastSeenAt) > 30*time.Second {
		// Keep the idle clock running; errors only mean a later time-out.
		if err := s.db.Queries().SessionTouch(ctx, sid); err == nil {
			s.cache.Delete(ctx, sessionKey(sid))
		}
	}
	a := &hospital.Actor{UserID: sess.UserID, Username: sess.Username, Role: sess.Role, DepartmentID: sess.DepartmentID,
		WardIDs: sess.WardIDs, SessionID: sid.String(), Permissions: PermissionSet(sess.Role)}
	if MFARequired[sess.Role] && !sess.MFAEnabled || sess.MFAEnabled && !sess.MFAVerified {
		a.Permissions = map[string]bool{}
		a.MFAEnrolmentRequired = !sess.MFAEnabled
	}
	return a, nil
}

func (s *Service) session(ctx context.Context, sid uuid.UUID) (cachedSession, error) {
	sess, err := cache.GetOrLoad(ctx, s.cache, sessionKey(sid), s.set.SessionCacheTTL, func() (cachedSession, error) {
		row, err := s.db.Queries().SessionGet(ctx, sid)
		if err != nil {
			return cachedSession{}, postgres.Translate(err)
		}
		cs := cachedSession{UserID: row.UserID.String(), Username: row.Username, Role: row.Role, Active: row.Active,
			MFAEnabled: row.MfaEnabled, MFAVerified: row.MfaVerified, ExpiresAt: row.ExpiresAt, LastSeenAt: row.LastSeenAt,
			RevokedAt: row.RevokedAt, WardIDs: uuidStrings(row.WardIds)}
		if row.DepartmentID != nil {
			cs.DepartmentID = row.DepartmentID.String()
		}
		return cs, nil
	})
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return cachedSession{}, hospital.Errorf(hospital.EUNAUTHORIZED, "The session does not exist.")
	}
	return sess, err
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
	a, err := hospital.Require(ctx, "")
	if err != nil {
		return err
	}
	sid, _ := uuid.Parse(a.SessionID)
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if _, err := q.SessionRevoke(ctx, dbgen.SessionRevokeParams{ID: sid, RevokeReason: ptr("logout")}); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "auth.logout", ResourceType: "session", ResourceID: a.SessionID})
	})
	s.cache.Delete(ctx, sessionKey(sid))
	return err
}

// Me returns the signed-in user. Returns EUNAUTHORIZED when anonymous.
func (s *Service) Me(ctx context.Context) (Me, error) {
	a, err := hospital.Require(ctx, "")
	if err != nil {
		return Me{}, err
	}
	uid, _ := uuid.Parse(a.UserID)
	u, err := s.userByID(ctx, s.db.Queries(), uid)
	if err != nil {
		return Me{}, err
	}
	sid, _ := uuid.Parse(a.SessionID)
	sess, err := s.db.Queries().SessionGet(ctx, sid)
	if err != nil {
		return Me{}, postgres.Translate(err)
	}
	perms := []string{}
	for p := range a.Permissions {
		perms = append(perms, p)
	}
	sortStrings(perms)
	return Me{User: u, Permissions: perms, SessionID: a.SessionID, ExpiresAt: sess.ExpiresAt,
		MFAEnrolmentRequired: a.MFAEnrolmentRequired, IdleTimeoutSeconds: int(s.set.IdleTimeout.Seconds())}, nil
}

// IssueTicket returns a 60-second token that opens the event WebSocket for
// the caller's session.
func (s *Service) IssueTicket(ctx context.Context) (Ticket, error) {
	a, err := hospital.Require(ctx, "")
	if err != nil {
		return Ticket{}, err
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

// ChangePassword replaces the caller's password after checking the current
// one, and ends their other sessions. Returns EINVALID for a weak new
// password, EUNAUTHORIZED for a wrong current one.
func (s *Service) ChangePassword(ctx context.Context, in PasswordChange) error {
	a, err := hospital.Require(ctx, "")
	if err != nil {
		return err
	}
	uid, _ := uuid.Parse(a.UserID)
	row, err := s.db.Queries().UserGet(ctx, uid)
	if err != nil {
		return postgres.Translate(err)
	}
	if ok, err := CheckPassword(ctx, row.PasswordHash, in.CurrentPassword); err != nil || !ok {
		if hospital.ErrorCode(err) == hospital.EUNAVAILABLE {
			return err
		}
		_ = audit.Record(ctx, s.db, audit.Entry{Action: "user.password_change", ResourceType: "user", ResourceID: a.UserID, Outcome: audit.Denied})
		return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"current_password": "is not your current password"}}
	}
	if p := PasswordProblem(in.NewPassword, row.Username, row.DisplayName); p != "" {
		return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.", Fields: map[string]string{"new_password": p}}
	}
	if in.NewPassword == in.CurrentPassword {
		return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.", Fields: map[string]string{"new_password": "must differ from the current password"}}
	}
	hash, err := HashPassword(ctx, in.NewPassword)
	if err != nil {
		return err
	}
	sid, _ := uuid.Parse(a.SessionID)
	var revoked []uuid.UUID
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if err := q.UserSetPassword(ctx, dbgen.UserSetPasswordParams{ID: uid, PasswordHash: hash}); err != nil {
			return err
		}
		if revoked, err = q.SessionsRevokeForUser(ctx, dbgen.SessionsRevokeForUserParams{UserID: uid,
			RevokeReason: ptr("password changed"), ExceptID: &sid}); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "user.password_change", ResourceType: "user", ResourceID: a.UserID,
			Details: map[string]any{"other_sessions_ended": len(revoked)}})
	})
	s.dropSessions(ctx, revoked)
	return err
}

func (s *Service) dropSessions(ctx context.Context, ids []uuid.UUID) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = sessionKey(id)
	}
	s.cache.Delete(ctx, keys...)
}

func uuidStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func ptr[T any](v T) *T { return &v }
