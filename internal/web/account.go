package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

const (
	// mfaPath is the enrolment page, where users who must use MFA are
	// kept until they have enrolled.
	mfaPath = "/account/mfa"
	// keepAlivePath is what app.js posts to while the user is active, so
	// that the backend's idle time-out follows the user's activity rather
	// than only their page loads.
	keepAlivePath = "/session/keepalive"
	// qrSize is the QR code's width and height in pixels.
	qrSize = 240
)

// mfaURL is the enrolment page, returning to next afterwards.
func mfaURL(next string) string {
	if next = safeNext(next); next == "/" {
		return mfaPath
	}
	return mfaPath + "?next=" + url.QueryEscape(next)
}

// refreshMe re-reads the signed-in user and updates the session with it,
// so that the MFA state and permissions shown are current.
func (s *Server) refreshMe(w http.ResponseWriter, r *http.Request) (identity.Me, error) {
	var me identity.Me
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		me, err = api.Me(ctx)
		return err
	})
	if err != nil {
		return me, err
	}
	sess := sessionFrom(r.Context())
	sess.applyMe(me)
	s.saveSession(w, sess)
	return me, nil
}

// AccountPage is "My account": who the user is and their sign-in security.
type AccountPage struct {
	Layout
	Me              identity.Me
	RoleName        string
	LastLogin       string
	PasswordChanged string
	SessionEnds     string
}

func (s *Server) handleAccountShow(w http.ResponseWriter, r *http.Request) error {
	me, err := s.refreshMe(w, r)
	if err != nil {
		return err
	}
	p := &AccountPage{
		Layout:          Layout{Title: "My account", Area: "My account", Nav: "account"},
		Me:              me,
		RoleName:        roleName(me.Role),
		PasswordChanged: formatDateTime(me.PasswordChangedAt, s.loc),
		SessionEnds:     formatDateTime(me.ExpiresAt, s.loc),
	}
	if me.LastLoginAt != nil {
		p.LastLogin = formatDateTime(*me.LastLoginAt, s.loc)
	}
	return s.render(w, r, http.StatusOK, "account", p)
}

// PasswordPage is the form to change one's own password.
type PasswordPage struct {
	Layout
	Summary []SummaryItem
	Fields  []Field
}

// passwordHint states the backend's password policy.
const passwordHint = "At least 12 characters. A passphrase of several unrelated words is easy to remember; common passwords are refused."

func newPasswordPage(errs map[string]string) *PasswordPage {
	fields := []Field{
		{Name: "current_password", Label: "Current password", Type: "password", Autocomplete: "current-password", MaxLength: 1024},
		{Name: "new_password", Label: "New password", Hint: passwordHint, Type: "password", Autocomplete: "new-password", MaxLength: 1024},
		{Name: "confirm_password", Label: "Confirm new password", Type: "password", Autocomplete: "new-password", MaxLength: 1024},
	}
	for i := range fields {
		fields[i].Error = fieldMessage(fields[i].Label, errs[fields[i].Name])
	}
	p := &PasswordPage{Layout: Layout{Title: "Change your password", Area: "My account", Nav: "account"}, Fields: fields,
		Summary: summaryFor(fields, errs)}
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return p
}

func (s *Server) handlePasswordForm(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, http.StatusOK, "account_password", newPasswordPage(nil))
}

func (s *Server) handlePasswordChange(w http.ResponseWriter, r *http.Request) error {
	in := identity.PasswordChange{CurrentPassword: r.PostFormValue("current_password"), NewPassword: r.PostFormValue("new_password")}
	confirm := r.PostFormValue("confirm_password")
	errs := map[string]string{}
	if in.CurrentPassword == "" {
		errs["current_password"] = "Enter your current password"
	}
	if in.NewPassword == "" {
		errs["new_password"] = "Enter a new password"
	} else if confirm != in.NewPassword {
		errs["confirm_password"] = "The new passwords do not match; type the same password twice"
	}
	if len(errs) > 0 {
		return s.render(w, r, http.StatusBadRequest, "account_password", newPasswordPage(errs))
	}
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error { return api.ChangePassword(ctx, in) })
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		p := newPasswordPage(ae.Errors)
		if len(p.Summary) == 0 {
			p.Summary = []SummaryItem{{Text: orDefault(ae.Detail, "The password could not be changed.")}}
		}
		return s.render(w, r, http.StatusBadRequest, "account_password", p)
	}
	if err != nil {
		return err
	}
	s.setFlash(w, Flash{Kind: "success", Message: "Your password has been changed. Any other sessions you had were signed out."})
	http.Redirect(w, r, "/account", http.StatusSeeOther)
	return nil
}

// MFAPage is the multi-factor authentication page: the enrolment (QR
// code, the secret as text and the confirmation form) while MFA is off,
// else its state and, where the role allows, the form to turn it off.
type MFAPage struct {
	Layout
	Enabled bool
	// RoleRequires: the user's role must use MFA; Forced: and they have
	// not enrolled yet, so nothing else is open to them.
	RoleRequires bool
	Forced       bool
	RoleName     string
	Enrolment    *EnrolmentView
	Next         string
	Summary      []SummaryItem
	Code         Field
	Password     Field
}

// EnrolmentView is a started enrolment as the page shows it.
type EnrolmentView struct {
	// QR is a data: URL of a PNG QR code of the otpauth URI; empty when
	// it could not be drawn (the secret as text still works).
	QR template.URL
	// Link is the otpauth:// URI, which opens the authenticator app on
	// the same phone.
	Link template.URL
	// Secret is the raw base32 secret; Groups is it in groups of four
	// for typing.
	Secret string
	Groups []string
}

func newEnrolmentView(pe *pendingEnrol) *EnrolmentView {
	v := &EnrolmentView{Secret: pe.Secret}
	for i := 0; i < len(pe.Secret); i += 4 {
		v.Groups = append(v.Groups, pe.Secret[i:min(i+4, len(pe.Secret))])
	}
	if strings.HasPrefix(pe.URI, "otpauth://totp/") {
		// The URI comes from our backend; both values are typed as safe
		// only after this check of their scheme.
		v.Link = template.URL(pe.URI)
		if qr, err := qrDataURL(pe.URI); err == nil {
			v.QR = qr
		}
	}
	return v
}

// qrDataURL draws the otpauth URI as a PNG QR code. The web server draws it
// itself, from the URI kept with the pending enrolment, because the PNG the
// API returns is too large for the session cookie and the code must be
// shown again after a mistyped confirmation code.
func qrDataURL(uri string) (template.URL, error) {
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return "", err
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())), nil
}

func (s *Server) newMFAPage(sess *session, next string) *MFAPage {
	p := &MFAPage{
		Layout:       Layout{Title: "Multi-factor authentication", Area: "My account", Nav: "account"},
		Enabled:      sess.MFAOn,
		RoleRequires: sess.MFARole || sess.MustEnrol,
		Forced:       sess.MustEnrol,
		RoleName:     roleName(sess.Role),
		Next:         safeNext(next),
		Code: Field{Name: "code", Label: "Code from the app", Hint: "The 6-digit code your authenticator app shows now.",
			Type: "text", Autocomplete: "one-time-code", InputMode: "numeric", Width: "medium", MaxLength: 7},
		Password: Field{Name: "password", Label: "Your password", Type: "password", Autocomplete: "current-password", MaxLength: 1024},
	}
	if p.Forced {
		p.Title = "Set up multi-factor authentication"
	}
	if !p.Enabled {
		if pe := sess.enrolStep(s.now()); pe != nil {
			p.Enrolment = newEnrolmentView(pe)
		}
	}
	return p
}

func (p *MFAPage) fail(summary []SummaryItem) {
	p.Summary = summary
	if len(summary) > 0 && !strings.HasPrefix(p.Title, "Error: ") {
		p.Title = "Error: " + p.Title
	}
}

func (s *Server) handleMFAShow(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.refreshMe(w, r); err != nil {
		return err
	}
	sess := sessionFrom(r.Context())
	return s.render(w, r, http.StatusOK, "account_mfa", s.newMFAPage(sess, r.URL.Query().Get("next")))
}

// handleMFAEnrol starts an enrolment: a new secret, kept sealed in the
// session cookie until it is confirmed.
func (s *Server) handleMFAEnrol(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	next := r.PostFormValue("next")
	var e identity.MFAEnrolment
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		e, err = api.EnrolMFA(ctx)
		return err
	})
	if client.StatusOf(err) == http.StatusConflict {
		// Already on (enrolled in another tab): show the state.
		sess.Enrol = nil
		s.saveSession(w, sess)
		http.Redirect(w, r, mfaURL(next), http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	sess.Enrol = &pendingEnrol{Secret: e.Secret, URI: e.OTPAuthURI, Until: s.now().Add(pendingEnrolTTL).Unix()}
	s.saveSession(w, sess)
	http.Redirect(w, r, mfaURL(next), http.StatusSeeOther)
	return nil
}

// MFACodesPage shows the recovery codes, once, right after enrolment.
type MFACodesPage struct {
	Layout
	Codes []string
	Next  string
}

// normalizeCode removes the spaces and dashes people type into codes.
func normalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\u00a0' {
			return -1
		}
		return r
	}, s)
}

func validTOTP(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// handleMFAConfirm turns MFA on with a code from the app and shows the
// recovery codes. They are rendered straight into this response, never
// stored: a reload finds MFA on and shows its state instead.
func (s *Server) handleMFAConfirm(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	next := r.PostFormValue("next")
	if sess.enrolStep(s.now()) == nil {
		sess.Enrol = nil
		s.saveSession(w, sess)
		s.setFlash(w, Flash{Kind: "error", Message: "The set-up took too long. Start again: you will get a new QR code."})
		http.Redirect(w, r, mfaURL(next), http.StatusSeeOther)
		return nil
	}
	code := normalizeCode(r.PostFormValue("code"))
	p := s.newMFAPage(sess, next)
	p.Code.Value = code
	if !validTOTP(code) {
		p.Code.Error = "Enter the 6-digit code your authenticator app shows"
		if code == "" {
			p.Code.Error = "Enter the code from your authenticator app"
		}
		p.fail([]SummaryItem{{Text: p.Code.Error, Href: "#" + p.Code.ID()}})
		return s.render(w, r, http.StatusBadRequest, "account_mfa", p)
	}
	var codes identity.RecoveryCodes
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		codes, err = api.ConfirmMFA(ctx, code)
		return err
	})
	var ae *client.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusBadRequest:
			p.Code.Error = fieldMessage("Code", orDefault(ae.Errors["code"], "is not the current code from your authenticator app"))
			p.fail([]SummaryItem{{Text: p.Code.Error, Href: "#" + p.Code.ID()}})
			return s.render(w, r, http.StatusBadRequest, "account_mfa", p)
		case http.StatusConflict:
			sess.Enrol = nil
			s.saveSession(w, sess)
			s.setFlash(w, Flash{Kind: "error", Message: orDefault(ae.Detail, "The set-up has to be started again.")})
			http.Redirect(w, r, mfaURL(next), http.StatusSeeOther)
			return nil
		}
	}
	if err != nil {
		return err
	}
	sess.Enrol = nil
	sess.MFAOn, sess.MustEnrol = true, false
	// The session is now verified and holds the role's permissions again.
	_ = s.call(w, r, func(ctx context.Context, api *client.Client) error {
		me, err := api.Me(ctx)
		if err == nil {
			sess.applyMe(me)
		}
		return err
	})
	s.saveSession(w, sess)
	return s.render(w, r, http.StatusOK, "account_mfa_codes", &MFACodesPage{
		Layout: Layout{Title: "Save your recovery codes", Area: "My account", Nav: "account",
			Flash: &Flash{Kind: "success", Message: "Multi-factor authentication is now on."}},
		Codes: codes.Codes,
		Next:  safeNext(next),
	})
}

// handleMFADisable turns MFA off after checking the password. Roles that
// must use MFA are refused here and by the backend.
func (s *Server) handleMFADisable(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	if sess.MFARole {
		return errForbidden
	}
	password := r.PostFormValue("password")
	p := s.newMFAPage(sess, "")
	if password == "" {
		p.Password.Error = "Enter your password"
		p.fail([]SummaryItem{{Text: p.Password.Error, Href: "#" + p.Password.ID()}})
		return s.render(w, r, http.StatusBadRequest, "account_mfa", p)
	}
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error { return api.DisableMFA(ctx, password) })
	var ae *client.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusBadRequest:
			p.Password.Error = fieldMessage("Password", orDefault(ae.Errors["password"], "is not right"))
			p.fail([]SummaryItem{{Text: p.Password.Error, Href: "#" + p.Password.ID()}})
			return s.render(w, r, http.StatusBadRequest, "account_mfa", p)
		case http.StatusForbidden:
			p.fail([]SummaryItem{{Text: orDefault(ae.Detail, "Your role must use multi-factor authentication.")}})
			return s.render(w, r, http.StatusForbidden, "account_mfa", p)
		}
	}
	if err != nil {
		return err
	}
	sess.MFAOn = false
	s.saveSession(w, sess)
	s.setFlash(w, Flash{Kind: "success", Message: "Multi-factor authentication is now off. You can turn it on again at any time."})
	http.Redirect(w, r, mfaPath, http.StatusSeeOther)
	return nil
}

// handleKeepAlive is app.js telling that the user is active: one cheap
// backend call keeps the backend session's idle clock in step.
func (s *Server) handleKeepAlive(w http.ResponseWriter, r *http.Request) error {
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		_, err := api.Me(ctx)
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// formatDateTime writes a time as "2 Mar 2026, 14:05" in the hospital's
// time zone, or "" for the zero time.
func formatDateTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(dateLayout + ", 15:04")
}
