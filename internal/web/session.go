package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

const (
	// sessionCookie and flashCookie are the cookie names over plain HTTP
	// (development). With CookieSecure the names carry the __Host- prefix,
	// which browsers accept only from HTTPS, with Path=/ and without a
	// Domain: no sibling subdomain can plant or overwrite them.
	sessionCookie       = "hospital_session"
	secureSessionCookie = "__Host-hospital_session"
	flashCookie         = "hospital_flash"
	secureFlashCookie   = "__Host-hospital_flash"
	csrfField           = "csrf_token"
	csrfHeader          = "X-CSRF-Token"
	// flashMaxAge: a flash lives only across the redirect that follows
	// the action it reports.
	flashMaxAge = 60
	// refreshGrace is how long the answer to one refresh token is reused
	// for other requests that still carry it (see refresher).
	refreshGrace = time.Minute
	// pendingLoginTTL bounds how long the password typed at the first step
	// of a sign-in with multi-factor authentication is kept (sealed in the
	// cookie, never in the page) for the one-time code step.
	pendingLoginTTL = 5 * time.Minute
	// pendingEnrolTTL bounds how long a started MFA enrolment's secret is
	// kept for the confirmation step.
	pendingEnrolTTL = 30 * time.Minute
	// maxGrants is how many emergency access grants the cookie remembers
	// (for the banner on the patient page).
	maxGrants = 8
)

var (
	// errSessionEnded: the backend no longer accepts the session's tokens.
	errSessionEnded = errors.New("web: session ended")
	// errCSRF: a POST without a valid CSRF token or from another origin.
	errCSRF = errors.New("web: cross-site request refused")
)

// session is what the encrypted session cookie holds. Anonymous visitors
// have only the CSRF token, so that the login form is protected too.
type session struct {
	// SID identifies this browser session. It is not a secret (the cookie
	// is sealed anyway): a new one is drawn at sign-in and at sign-out, so
	// a session fixed before sign-in is never the signed-in one.
	SID     string `json:"sid"`
	Access  string `json:"at,omitempty"`
	Refresh string `json:"rt,omitempty"`
	// Expiry of the access token, Unix seconds.
	Expiry int64    `json:"exp,omitempty"`
	CSRF   string   `json:"csrf"`
	UserID string   `json:"uid,omitempty"`
	Name   string   `json:"name,omitempty"`
	Role   string   `json:"role,omitempty"`
	Perms  []string `json:"perms,omitempty"`
	// MustEnrol: the user's role requires multi-factor authentication and
	// they have not enrolled; the backend refuses everything but enrolment.
	MustEnrol bool `json:"enrol,omitempty"`
	// MFAOn and MFARole: MFA is on for the user; their role requires it.
	MFAOn   bool `json:"mfa,omitempty"`
	MFARole bool `json:"mfarole,omitempty"`
	// Idle is the backend's idle time-out in seconds, for the automatic
	// log-off in app.js.
	Idle int `json:"idle,omitempty"`
	// Login is the first step of a sign-in that awaits its one-time code.
	Login *pendingLogin `json:"pl,omitempty"`
	// Enrol is a started MFA enrolment awaiting its confirmation code.
	Enrol *pendingEnrol `json:"pe,omitempty"`
	// Grants are the user's recent emergency access grants.
	Grants []grantRef `json:"g,omitempty"`
}

// pendingLogin is a sign-in whose password was right and whose one-time
// code is still to come. Until is Unix seconds.
type pendingLogin struct {
	Username string `json:"u"`
	Password string `json:"p"`
	Until    int64  `json:"t"`
}

// pendingEnrol is an MFA enrolment between its start and its confirmation.
type pendingEnrol struct {
	Secret string `json:"s"`
	URI    string `json:"u"`
	Until  int64  `json:"t"`
}

// grantRef is an emergency access grant to one patient, until Unix seconds.
type grantRef struct {
	PatientID string `json:"p"`
	Until     int64  `json:"t"`
}

func (s *session) signedIn() bool { return s != nil && s.UserID != "" && s.Access != "" }

// loginStep returns the sign-in awaiting its code, if it has not expired.
func (s *session) loginStep(now time.Time) *pendingLogin {
	if s == nil || s.Login == nil || now.Unix() > s.Login.Until {
		return nil
	}
	return s.Login
}

// enrolStep returns the started enrolment, if it has not expired.
func (s *session) enrolStep(now time.Time) *pendingEnrol {
	if s == nil || s.Enrol == nil || now.Unix() > s.Enrol.Until || s.Enrol.Secret == "" {
		return nil
	}
	return s.Enrol
}

// grant returns the expiry of an unexpired emergency grant to patient.
func (s *session) grant(patientID string, now time.Time) (time.Time, bool) {
	for _, g := range s.Grants {
		if g.PatientID == patientID && g.Until > now.Unix() {
			return time.Unix(g.Until, 0), true
		}
	}
	return time.Time{}, false
}

// addGrant remembers a grant, dropping expired ones and the oldest beyond
// maxGrants so the cookie stays small.
func (s *session) addGrant(patientID string, until, now time.Time) {
	kept := []grantRef{}
	for _, g := range s.Grants {
		if g.Until > now.Unix() && g.PatientID != patientID {
			kept = append(kept, g)
		}
	}
	kept = append(kept, grantRef{PatientID: patientID, Until: until.Unix()})
	if len(kept) > maxGrants {
		kept = kept[len(kept)-maxGrants:]
	}
	s.Grants = kept
}

// applyMe copies what the UI needs from GET /auth/me.
func (s *session) applyMe(me identity.Me) {
	s.UserID, s.Name, s.Role, s.Perms = me.ID, me.DisplayName, me.Role, me.Permissions
	s.MustEnrol, s.MFAOn, s.MFARole = me.MFAEnrolmentRequired, me.MFAEnabled, me.MFARequired
	s.Idle = me.IdleTimeoutSeconds
}

// can reports whether the user holds permission p. The backend checks
// again on every call; this only decides what the UI offers.
func (s *session) can(p string) bool { return s.signedIn() && slices.Contains(s.Perms, p) }

type sessionKey struct{}

// sessionFrom returns the request's session; never nil inside withSession.
func sessionFrom(ctx context.Context) *session {
	sess, _ := ctx.Value(sessionKey{}).(*session)
	return sess
}

// newIdempotencyKey is the Idempotency-Key a command's form carries: a
// time-ordered UUID, as client.NewKey makes (see migration 00019). It
// guards against a form sent twice, not against anyone: the key is only
// ever looked up with the signed-in user's id.
func newIdempotencyKey() string { return client.NewKey() }

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// seal encrypts and authenticates v. The cookie name is the additional
// data, so a value cannot be moved from one cookie to another.
func (s *Server) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// open reverses seal; a tampered, truncated or foreign value is an error.
func (s *Server) open(name, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return err
	}
	n := s.aead.NonceSize()
	if len(raw) < n+s.aead.Overhead() {
		return errors.New("web: cookie too short")
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return err
	}
	return json.Unmarshal(plain, v)
}

// readSession returns the session in the request's cookie, or nil.
func (s *Server) readSession(r *http.Request) *session {
	c, err := r.Cookie(s.sessionName)
	if err != nil {
		return nil
	}
	var sess session
	if s.open(s.sessionName, c.Value, &sess) != nil || sess.CSRF == "" {
		return nil
	}
	if sess.SID == "" {
		sess.SID = newToken()
	}
	return &sess
}

// newAnonymousSession is a signed-out session: a fresh id and CSRF token.
func newAnonymousSession() *session { return &session{SID: newToken(), CSRF: newToken()} }

// saveSession writes the session cookie. It has no Domain and Path=/, as
// the __Host- prefix requires, and lives as long as the browser session:
// the backend's idle time-out and absolute lifetime end it earlier.
func (s *Server) saveSession(w http.ResponseWriter, sess *session) {
	v, err := s.seal(s.sessionName, sess)
	if err != nil {
		// Only crypto/rand can fail here; then no page can be served safely.
		panic(fmt.Errorf("web: seal session: %w", err))
	}
	setCookie(w, &http.Cookie{Name: s.sessionName, Value: v, Path: "/", HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// setCookie sets c, replacing a Set-Cookie of the same name added earlier
// in this response (a refresh and then a logout both rewrite the session).
func setCookie(w http.ResponseWriter, c *http.Cookie) {
	h := w.Header()
	var kept []string
	for _, v := range h.Values("Set-Cookie") {
		if !strings.HasPrefix(v, c.Name+"=") {
			kept = append(kept, v)
		}
	}
	h.Del("Set-Cookie")
	for _, v := range kept {
		h.Add("Set-Cookie", v)
	}
	h.Add("Set-Cookie", c.String())
}

// withSession loads the session cookie, or starts an anonymous session
// with a fresh CSRF token. Static files and probes need none.
func (s *Server) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/static/") || strings.HasPrefix(r.URL.Path, "/health/") {
			next.ServeHTTP(w, r)
			return
		}
		sess := s.readSession(r)
		if sess == nil {
			sess = newAnonymousSession()
			s.saveSession(w, sess)
		}
		if info := httpx.InfoFrom(r.Context()); info != nil && sess.UserID != "" {
			info.UserID = sess.UserID
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	})
}

// checkCSRF refuses state-changing requests that come from another origin
// (Sec-Fetch-Site / Origin, via http.CrossOriginProtection, and an Origin
// other than PublicURL's) or that lack the session's CSRF token, sent as
// the csrf_token form field or the X-CSRF-Token header.
func (s *Server) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if err := s.sameOrigin(r); err != nil {
			s.writeError(w, r, errCSRF)
			return
		}
		token := r.Header.Get(csrfHeader)
		if token == "" {
			if err := r.ParseForm(); err != nil {
				var mbe *http.MaxBytesError
				if !errors.As(err, &mbe) {
					err = statusError(http.StatusBadRequest)
				}
				s.writeError(w, r, err)
				return
			}
			token = r.PostForm.Get(csrfField)
		}
		sess := sessionFrom(r.Context())
		if sess == nil || !validCSRF(sess.CSRF, token) {
			s.writeError(w, r, errCSRF)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) sameOrigin(r *http.Request) error {
	if err := s.cop.Check(r); err != nil {
		return err
	}
	// "null" is what browsers send for a same-origin form post under
	// Referrer-Policy: no-referrer; CrossOriginProtection has judged those
	// by Sec-Fetch-Site already.
	if o := r.Header.Get("Origin"); o != "" && o != "null" && s.publicOrigin != "" && o != s.publicOrigin {
		return errCSRF
	}
	return nil
}

func validCSRF(want, got string) bool {
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// accessEnrolment is the access of the few pages a user who must still
// enrol in multi-factor authentication may open (the enrolment itself and
// the keep-alive); for everyone else it means Authenticated.
const accessEnrolment = "mfa_enrolment"

// guard enforces each route's declared access: Public pages for anyone;
// everything else for a signed-in user, who is sent to the sign-in page
// otherwise and comes back afterwards. A user who must enrol in MFA is
// kept on the enrolment page. A route that names a permission needs it
// (the backend checks again on every call the page makes).
func (s *Server) guard(w http.ResponseWriter, r *http.Request, perm string) bool {
	if perm == httpx.Public {
		return true
	}
	sess := sessionFrom(r.Context())
	if !sess.signedIn() {
		if isPartial(r) {
			http.Error(w, "signed out", http.StatusUnauthorized)
			return false
		}
		http.Redirect(w, r, loginURL(r), http.StatusSeeOther)
		return false
	}
	if sess.MustEnrol && perm != accessEnrolment {
		if isPartial(r) {
			http.Error(w, "multi-factor authentication enrolment required", http.StatusForbidden)
			return false
		}
		http.Redirect(w, r, mfaPath, http.StatusSeeOther)
		return false
	}
	if perm == httpx.Authenticated || perm == accessEnrolment || sess.can(perm) {
		return true
	}
	s.writeError(w, r, errForbidden)
	return false
}

// isPartial reports requests made by app.js rather than by navigation:
// they get a bare status instead of a redirect or an error page.
func isPartial(r *http.Request) bool {
	return r.URL.Query().Has("fragment") || r.URL.Path == "/events/ticket" || r.URL.Path == keepAlivePath
}

// loginURL is /login?next=<where the user was>. A page fragment returns to
// its whole page; a form post returns to the form.
func loginURL(r *http.Request) string {
	next := r.URL.Path
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		q.Del("fragment")
		if len(q) > 0 {
			next += "?" + q.Encode()
		}
	}
	if next == "/" {
		return "/login"
	}
	return "/login?next=" + url.QueryEscape(next)
}

// safeNext returns next when it is a path on this site, else "/". A
// leading "//" or "/\" would be read by browsers as another host.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	if strings.ContainsFunc(next, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	if u.Path == "/login" {
		return "/"
	}
	return next
}

// Flash is a one-time message shown on the next page.
type Flash struct {
	Kind    string `json:"k"` // "success" or "error"
	Message string `json:"m"`
}

// setFlash stores f for the next page. It is encrypted like the session:
// it may name a patient's MRN.
func (s *Server) setFlash(w http.ResponseWriter, f Flash) {
	v, err := s.seal(s.flashName, f)
	if err != nil {
		return
	}
	setCookie(w, &http.Cookie{Name: s.flashName, Value: v, Path: "/", MaxAge: flashMaxAge, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// takeFlash returns the pending flash, if any, and deletes it.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) *Flash {
	c, err := r.Cookie(s.flashName)
	if err != nil {
		return nil
	}
	setCookie(w, &http.Cookie{Name: s.flashName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode})
	var f Flash
	if s.open(s.flashName, c.Value, &f) != nil || f.Message == "" {
		return nil
	}
	if f.Kind != "error" {
		f.Kind = "success"
	}
	return &f
}

// apiContext carries the request id to the backend, so that one id
// follows a page across both services' logs, and the user's IP and browser,
// so that the backend's rate limits and session records see the user rather
// than this pod.
func apiContext(r *http.Request) context.Context {
	ctx := client.WithRequestID(r.Context(), httpx.RequestID(r.Context()))
	ip := ""
	if info := httpx.InfoFrom(r.Context()); info != nil && info.ClientIP.IsValid() {
		ip = info.ClientIP.String()
	}
	return client.WithForwardedFor(ctx, ip, r.UserAgent())
}

// call runs fn with a client that carries the user's access token. It
// renews the token first when it expires within refreshMargin, and once
// more when the backend answers 401 anyway (revoked key, clock skew). When
// the session cannot be renewed it returns errSessionEnded, which
// writeError turns into a trip to the login page.
func (s *Server) call(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, api *client.Client) error) error {
	sess := sessionFrom(r.Context())
	if !sess.signedIn() {
		return errSessionEnded
	}
	ctx := apiContext(r)
	renewed := false
	if time.Unix(sess.Expiry, 0).Sub(s.now()) < refreshMargin {
		if err := s.renew(ctx, w, sess); err != nil {
			return err
		}
		renewed = true
	}
	err := fn(ctx, s.api.WithToken(sess.Access))
	if client.StatusOf(err) != http.StatusUnauthorized {
		return err
	}
	if renewed {
		return errSessionEnded
	}
	if err := s.renew(ctx, w, sess); err != nil {
		return err
	}
	err = fn(ctx, s.api.WithToken(sess.Access))
	if client.StatusOf(err) == http.StatusUnauthorized {
		return errSessionEnded
	}
	return err
}

// renew exchanges the refresh token and rewrites the cookie.
func (s *Server) renew(ctx context.Context, w http.ResponseWriter, sess *session) error {
	if sess.Refresh == "" {
		return errSessionEnded
	}
	old := sess.Refresh
	res, err := s.refresh.do(ctx, old, func(ctx context.Context) (identity.LoginResponse, error) {
		return s.api.Refresh(ctx, old)
	})
	if err != nil {
		if st := client.StatusOf(err); st == http.StatusUnauthorized || st == http.StatusBadRequest {
			return errSessionEnded
		}
		return err
	}
	sess.Access, sess.Refresh = res.AccessToken, res.RefreshToken
	sess.Expiry = s.now().Add(time.Duration(res.ExpiresIn) * time.Second).Unix()
	// The role, permissions and MFA state may have changed since sign-in
	// (an administrator changed the role, the user enrolled elsewhere): a
	// renewal is the moment to catch up. Failing that, the old ones stay.
	if me, err := s.api.WithToken(sess.Access).Me(ctx); err == nil {
		sess.applyMe(me)
	}
	s.saveSession(w, sess)
	return nil
}

// refresher makes concurrent renewals of one refresh token share a single
// backend call. Refresh tokens are single-use and a second use ends the
// whole session (theft detection), so two tabs or a page and its live
// fragment renewing at the same moment must not both present the old
// token. The answer is kept for refreshGrace for requests that were
// already on their way with the old cookie.
type refresher struct {
	mu    sync.Mutex
	calls map[[32]byte]*refreshCall
}

type refreshCall struct {
	done     chan struct{}
	res      identity.LoginResponse
	err      error
	finished time.Time
}

func newRefresher() *refresher { return &refresher{calls: map[[32]byte]*refreshCall{}} }

func (f *refresher) do(ctx context.Context, token string, fn func(context.Context) (identity.LoginResponse, error)) (identity.LoginResponse, error) {
	key := sha256.Sum256([]byte(token))
	now := time.Now()
	f.mu.Lock()
	for k, c := range f.calls {
		if !c.finished.IsZero() && now.Sub(c.finished) > refreshGrace {
			delete(f.calls, k)
		}
	}
	c, found := f.calls[key]
	if !found {
		c = &refreshCall{done: make(chan struct{})}
		f.calls[key] = c
	}
	f.mu.Unlock()
	if !found {
		// The call is shared: one request going away must not fail the
		// others, so it runs without the caller's cancellation.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		res, err := fn(cctx)
		cancel()
		f.mu.Lock()
		c.res, c.err, c.finished = res, err, time.Now()
		if err != nil {
			// Failures are not remembered: the next request tries again.
			delete(f.calls, key)
		}
		f.mu.Unlock()
		close(c.done)
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return identity.LoginResponse{}, ctx.Err()
	}
}
