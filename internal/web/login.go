package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// LoginPage is the sign-in form. With MFAStep it is the second step of a
// sign-in with multi-factor authentication: the password was right and
// the one-time code is asked for. The password is not in that page; it
// waits, sealed in the session cookie, for at most pendingLoginTTL.
type LoginPage struct {
	Layout
	Next     string
	Username string
	// Summary lists the problems at the top of the form.
	Summary       []SummaryItem
	UsernameError string
	PasswordError string
	MFAStep       bool
	OTPError      string
}

func newLoginPage(next string) *LoginPage {
	return &LoginPage{Layout: Layout{Title: "Sign in", Area: "Sign in"}, Next: next}
}

// mfaStep turns p into the one-time code step for username.
func (p *LoginPage) mfaStep(username string) {
	p.MFAStep, p.Username = true, username
	p.Title = "Enter your one-time code"
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"))
	sess := sessionFrom(r.Context())
	if sess.signedIn() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	p := newLoginPage(next)
	if r.URL.Query().Has("restart") {
		// "Sign in as someone else": forget the first step.
		if sess.Login != nil {
			sess.Login = nil
			s.saveSession(w, sess)
		}
	} else if pl := sess.loginStep(s.now()); pl != nil {
		p.mfaStep(pl.Username)
	}
	return s.render(w, r, http.StatusOK, "login", p)
}

// handleLoginSubmit takes either the username and password (first step)
// or the one-time code (second step, when the account uses MFA). The
// backend answers a right password without a right code with problem code
// mfa_required; then the code step is shown.
func (s *Server) handleLoginSubmit(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	p := newLoginPage(safeNext(r.PostFormValue("next")))
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	otp := strings.TrimSpace(r.PostFormValue("otp"))
	codeStep := r.PostForm.Has("otp") && username == "" && password == ""

	if codeStep {
		pl := sess.loginStep(s.now())
		if pl == nil {
			sess.Login = nil
			s.saveSession(w, sess)
			p.Summary = []SummaryItem{{Text: "Your sign-in took too long. Enter your username and password again.", Href: "#f-username"}}
			return s.render(w, r, http.StatusBadRequest, "login", p)
		}
		username, password = pl.Username, pl.Password
		p.mfaStep(username)
		if otp == "" {
			p.OTPError = "Enter the code from your authenticator app, or a recovery code"
			p.summarize()
			return s.render(w, r, http.StatusBadRequest, "login", p)
		}
	} else {
		p.Username = username
		if username == "" {
			p.UsernameError = "Enter your username"
		}
		if password == "" {
			p.PasswordError = "Enter your password"
		}
		if p.UsernameError != "" || p.PasswordError != "" {
			p.summarize()
			return s.render(w, r, http.StatusBadRequest, "login", p)
		}
	}

	ctx := apiContext(r)
	var (
		tok identity.LoginResponse
		err error
	)
	if otp == "" {
		tok, err = s.api.Login(ctx, username, password)
	} else {
		tok, err = s.api.LoginMFA(ctx, username, password, otp)
	}
	var ae *client.Error
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusUnauthorized && ae.Code == hospital.EMFAREQUIRED:
			sess.Login = &pendingLogin{Username: username, Password: password, Until: s.now().Add(pendingLoginTTL).Unix()}
			s.saveSession(w, sess)
			p.mfaStep(username)
			if otp == "" {
				// The first step succeeded: ask for the code, no error yet.
				return s.render(w, r, http.StatusOK, "login", p)
			}
			p.OTPError = orDefault(ae.Detail, "The code is not valid. Enter a current code from your authenticator app, or a recovery code.")
			p.summarize()
			return s.render(w, r, http.StatusUnauthorized, "login", p)
		case ae.Status == http.StatusUnauthorized:
			// The password itself was refused (or changed since the first
			// step): start again from the username.
			if sess.Login != nil {
				sess.Login = nil
				s.saveSession(w, sess)
			}
			p.MFAStep, p.Title = false, "Sign in"
			p.Summary = []SummaryItem{{Text: orDefault(ae.Detail, "Wrong username or password."), Href: "#f-username"}}
			return s.render(w, r, http.StatusUnauthorized, "login", p)
		case ae.Status == http.StatusTooManyRequests:
			wait := max(ae.RetryAfter, time.Second)
			w.Header().Set("Retry-After", httpx.RetryAfter(wait))
			p.Summary = []SummaryItem{{Text: orDefault(ae.Detail, "Too many sign-in attempts.") +
				" You can try again in " + waitText(wait) + "."}}
			return s.render(w, r, http.StatusTooManyRequests, "login", p)
		case ae.Status == http.StatusServiceUnavailable:
			// The backend is busy (many signing in at once): the form comes
			// back as it was, to send again in a moment.
			wait := max(ae.RetryAfter, time.Second)
			w.Header().Set("Retry-After", httpx.RetryAfter(wait))
			p.Summary = []SummaryItem{{Text: orDefault(ae.Detail, "The system is busy.") + " Sign in again in a moment."}}
			return s.render(w, r, http.StatusServiceUnavailable, "login", p)
		case ae.Status == http.StatusBadRequest:
			if p.MFAStep {
				p.OTPError = fieldMessage("Code", ae.Errors["otp"])
			} else {
				p.UsernameError = fieldMessage("Username", ae.Errors["username"])
				p.PasswordError = fieldMessage("Password", ae.Errors["password"])
			}
			p.summarize()
			if len(p.Summary) == 0 {
				p.Summary = []SummaryItem{{Text: orDefault(ae.Detail, "Check your username and password.")}}
			}
			return s.render(w, r, http.StatusBadRequest, "login", p)
		}
	}
	if err != nil {
		return err
	}
	return s.startSession(w, r, tok, p.Next)
}

// startSession turns a token pair into the signed-in session: a new
// session id and a new CSRF token (a token planted before sign-in is
// worthless), the user's permissions and MFA state from /auth/me. A user
// who must enrol in MFA goes to the enrolment page, with the enrolment
// already started so the QR code is there.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, tok identity.LoginResponse, next string) error {
	ctx := apiContext(r)
	api := s.api.WithToken(tok.AccessToken)
	me, err := api.Me(ctx)
	if err != nil {
		if client.StatusOf(err) == http.StatusUnauthorized {
			return errSessionEnded
		}
		return err
	}
	sess := &session{
		SID:     newToken(),
		Access:  tok.AccessToken,
		Refresh: tok.RefreshToken,
		Expiry:  s.now().Add(time.Duration(tok.ExpiresIn) * time.Second).Unix(),
		CSRF:    newToken(),
	}
	sess.applyMe(me)
	if info := httpx.InfoFrom(r.Context()); info != nil {
		info.UserID = me.ID
	}
	if sess.MustEnrol {
		if e, err := api.EnrolMFA(ctx); err == nil {
			sess.Enrol = &pendingEnrol{Secret: e.Secret, URI: e.OTPAuthURI, Until: s.now().Add(pendingEnrolTTL).Unix()}
		} else {
			// The enrolment page offers to start again.
			s.log.Warn("start MFA enrolment at sign-in failed", "request_id", httpx.RequestID(r.Context()), "error", redact(err))
		}
		s.saveSession(w, sess)
		http.Redirect(w, r, mfaURL(next), http.StatusSeeOther)
		return nil
	}
	s.saveSession(w, sess)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (p *LoginPage) summarize() {
	if p.UsernameError != "" {
		p.Summary = append(p.Summary, SummaryItem{Text: p.UsernameError, Href: "#f-username"})
	}
	if p.PasswordError != "" {
		p.Summary = append(p.Summary, SummaryItem{Text: p.PasswordError, Href: "#f-password"})
	}
	if p.OTPError != "" {
		p.Summary = append(p.Summary, SummaryItem{Text: p.OTPError, Href: "#f-otp"})
	}
	if len(p.Summary) > 0 && !strings.HasPrefix(p.Title, "Error: ") {
		p.Title = "Error: " + p.Title
	}
}

// handleLogout ends the backend session too, so the refresh token in the
// cookie is worthless even if the cookie was copied. reason=idle is the
// automatic log-off of app.js.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	s.signOut(w, r, r.PostFormValue("reason") == "idle", r.PostFormValue("next"))
	return nil
}

// handleLogoutLink is GET /logout?reason=idle, where app.js sends an idle
// page. It signs out only on a navigation from this site (or a typed
// address): another site linking here must not sign users out, so a
// cross-site request just goes to the start page.
func (s *Server) handleLogoutLink(w http.ResponseWriter, r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	q := r.URL.Query()
	s.signOut(w, r, q.Get("reason") == "idle", q.Get("next"))
	return nil
}

// signOut ends the session at the backend and in the cookie, which gets a
// new session id, and sends the user to the sign-in page with a message.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, idle bool, next string) {
	sess := sessionFrom(r.Context())
	idleSeconds := 0
	if sess != nil {
		idleSeconds = sess.Idle
	}
	if sess.signedIn() {
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error { return api.Logout(ctx) })
		if err != nil && !errors.Is(err, errSessionEnded) {
			s.log.Warn("logout at the backend failed", "request_id", httpx.RequestID(r.Context()), "error", redact(err))
		}
	}
	fresh := newAnonymousSession()
	// Kept so that a second tab's idle log-off, arriving signed out, can
	// still say how long the wait was.
	fresh.Idle = idleSeconds
	s.saveSession(w, fresh)
	msg := "You have signed out."
	if idle {
		msg = idleMessage(idleSeconds)
	}
	s.setFlash(w, Flash{Kind: "success", Message: msg})
	to := "/login"
	if next = safeNext(next); idle && next != "/" {
		to += "?next=" + url.QueryEscape(next)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// idleMessage says why the user is on the sign-in page after the
// automatic log-off.
func idleMessage(seconds int) string {
	switch {
	case seconds <= 0:
		return "You were signed out after a period without activity."
	case seconds < 60:
		return "You were signed out after " + plural(seconds, "second") + " without activity."
	default:
		return "You were signed out after " + plural((seconds+30)/60, "minute") + " without activity."
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
