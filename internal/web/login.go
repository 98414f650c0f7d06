package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
)

// LoginPage is the sign-in form.
type LoginPage struct {
	Layout
	Next     string
	Username string
	// Summary lists the problems at the top of the form.
	Summary       []SummaryItem
	UsernameError string
	PasswordError string
}

func newLoginPage(next string) *LoginPage {
	return &LoginPage{Layout: Layout{Title: "Sign in", Area: "Sign in"}, Next: next}
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"))
	if sessionFrom(r.Context()).signedIn() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	return s.render(w, r, http.StatusOK, "login", newLoginPage(next))
}

func (s *Server) handleLoginSubmit(w http.ResponseWriter, r *http.Request) error {
	p := newLoginPage(safeNext(r.PostFormValue("next")))
	p.Username = strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	if p.Username == "" {
		p.UsernameError = "Enter your username"
	}
	if password == "" {
		p.PasswordError = "Enter your password"
	}
	if p.UsernameError != "" || p.PasswordError != "" {
		p.summarize()
		return s.render(w, r, http.StatusBadRequest, "login", p)
	}

	ctx := apiContext(r)
	tok, err := s.api.Login(ctx, p.Username, password)
	var ae *client.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusUnauthorized:
			p.Summary = []SummaryItem{{Text: orDefault(ae.Detail, "Wrong username or password."), Href: "#f-username"}}
			return s.render(w, r, http.StatusUnauthorized, "login", p)
		case http.StatusTooManyRequests:
			wait := max(ae.RetryAfter, time.Second)
			w.Header().Set("Retry-After", httpx.RetryAfter(wait))
			p.Summary = []SummaryItem{{Text: orDefault(ae.Detail, "Too many sign-in attempts.") +
				" You can try again in " + waitText(wait) + "."}}
			return s.render(w, r, http.StatusTooManyRequests, "login", p)
		case http.StatusBadRequest:
			p.UsernameError = fieldMessage("Username", ae.Errors["username"])
			p.PasswordError = fieldMessage("Password", ae.Errors["password"])
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
	me, err := s.api.WithToken(tok.AccessToken).Me(ctx)
	if err != nil {
		if client.StatusOf(err) == http.StatusUnauthorized {
			return errSessionEnded
		}
		return err
	}
	// A new CSRF token at sign-in: a token planted before it is worthless.
	s.saveSession(w, &session{
		Access:  tok.AccessToken,
		Refresh: tok.RefreshToken,
		Expiry:  s.now().Add(time.Duration(tok.ExpiresIn) * time.Second).Unix(),
		CSRF:    newToken(),
		UserID:  me.ID,
		Name:    me.DisplayName,
		Role:    me.Role,
		Perms:   me.Permissions,
	})
	if info := httpx.InfoFrom(r.Context()); info != nil {
		info.UserID = me.ID
	}
	http.Redirect(w, r, p.Next, http.StatusSeeOther)
	return nil
}

func (p *LoginPage) summarize() {
	if p.UsernameError != "" {
		p.Summary = append(p.Summary, SummaryItem{Text: p.UsernameError, Href: "#f-username"})
	}
	if p.PasswordError != "" {
		p.Summary = append(p.Summary, SummaryItem{Text: p.PasswordError, Href: "#f-password"})
	}
}

// handleLogout ends the backend session too, so the refresh token in the
// cookie is worthless even if the cookie was copied.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	if sessionFrom(r.Context()).signedIn() {
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error { return api.Logout(ctx) })
		if err != nil && !errors.Is(err, errSessionEnded) {
			s.log.Warn("logout at the backend failed", "request_id", httpx.RequestID(r.Context()), "error", redact(err))
		}
	}
	s.clearSession(w)
	s.setFlash(w, Flash{Kind: "success", Message: "You have signed out."})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
