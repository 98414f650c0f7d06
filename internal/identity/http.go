package identity

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
)

// Handler serves /api/v1/auth, /api/v1/users and /api/v1/roles.
type Handler struct {
	svc *Service
}

// NewHandler returns the HTTP handler of the identity module.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

// Routes registers the module's routes with the access each needs.
func (h *Handler) Routes(r *httpx.Router) {
	r.Handle("POST /api/v1/auth/login", httpx.Public, h.handleLogin)
	r.Handle("POST /api/v1/auth/refresh", httpx.Public, h.handleRefresh)
	r.Handle("GET /api/v1/auth/jwks.json", httpx.Public, h.handleJWKS)
	r.Handle("POST /api/v1/auth/logout", httpx.Authenticated, h.handleLogout)
	r.Handle("GET /api/v1/auth/me", httpx.Authenticated, h.handleMe)
	r.Handle("POST /api/v1/auth/ws-ticket", httpx.Authenticated, h.handleTicket)
	r.Handle("POST /api/v1/auth/password", httpx.Authenticated, h.handlePasswordChange)
	r.Handle("POST /api/v1/auth/mfa/enrol", httpx.Authenticated, h.handleMFAEnrol)
	r.Handle("POST /api/v1/auth/mfa/confirm", httpx.Authenticated, h.handleMFAConfirm)
	r.Handle("POST /api/v1/auth/mfa/disable", httpx.Authenticated, h.handleMFADisable)

	r.Handle("GET /api/v1/roles", PermUserAdmin, h.handleRoleList)
	r.Handle("GET /api/v1/users", PermUserAdmin, h.handleUserList)
	r.Handle("POST /api/v1/users", PermUserAdmin, h.handleUserCreate)
	r.Handle("GET /api/v1/users/{id}", PermUserAdmin, h.handleUserGet)
	r.Handle("PUT /api/v1/users/{id}", PermUserAdmin, h.handleUserUpdate)
	r.Handle("POST /api/v1/users/{id}/disable", PermUserAdmin, h.handleUserDisable)
	r.Handle("POST /api/v1/users/{id}/enable", PermUserAdmin, h.handleUserEnable)
	r.Handle("POST /api/v1/users/{id}/password", PermUserAdmin, h.handleUserPasswordReset)
	r.Handle("POST /api/v1/users/{id}/sessions/revoke", PermUserAdmin, h.handleUserSessionsRevoke)
	r.Handle("POST /api/v1/users/{id}/mfa/reset", PermUserAdmin, h.handleUserMFAReset)
}

// LoginResponse is the token response with its refresh token.
type LoginResponse struct {
	TokenResponse
	RefreshToken string `json:"refresh_token"`
}

// RefreshRequest is the body of POST /api/v1/auth/refresh.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// RevokedSessions answers POST /api/v1/users/{id}/sessions/revoke.
type RevokedSessions struct {
	Revoked int `json:"revoked"`
}

func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var req LoginRequest
	if err := httpx.Decode(r, &req); err != nil {
		return err
	}
	c := hospital.ClientFrom(r.Context())
	tok, refresh, err := h.svc.Login(r.Context(), req, c.IP, c.UserAgent)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, LoginResponse{TokenResponse: tok, RefreshToken: refresh})
	return nil
}

func (h *Handler) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	var req RefreshRequest
	if err := httpx.Decode(r, &req); err != nil {
		return err
	}
	tok, refresh, err := h.svc.Refresh(r.Context(), req.RefreshToken)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, LoginResponse{TokenResponse: tok, RefreshToken: refresh})
	return nil
}

func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.Logout(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleMe(w http.ResponseWriter, r *http.Request) error {
	me, err := h.svc.Me(r.Context())
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, me)
	return nil
}

func (h *Handler) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpx.JSON(w, http.StatusOK, h.svc.Keys().JWKS())
	return nil
}

func (h *Handler) handleTicket(w http.ResponseWriter, r *http.Request) error {
	t, err := h.svc.IssueTicket(r.Context())
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, t)
	return nil
}

func (h *Handler) handlePasswordChange(w http.ResponseWriter, r *http.Request) error {
	var in PasswordChange
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	if err := h.svc.ChangePassword(r.Context(), in); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleMFAEnrol(w http.ResponseWriter, r *http.Request) error {
	e, err := h.svc.EnrolMFA(r.Context())
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, e)
	return nil
}

func (h *Handler) handleMFAConfirm(w http.ResponseWriter, r *http.Request) error {
	var in MFAConfirm
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	codes, err := h.svc.ConfirmMFA(r.Context(), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, codes)
	return nil
}

func (h *Handler) handleMFADisable(w http.ResponseWriter, r *http.Request) error {
	var in MFADisable
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	if err := h.svc.DisableMFA(r.Context(), in); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleRoleList(w http.ResponseWriter, r *http.Request) error {
	httpx.JSON(w, http.StatusOK, struct {
		Items []RoleInfo `json:"items"`
	}{RoleList()})
	return nil
}

func (h *Handler) handleUserList(w http.ResponseWriter, r *http.Request) error {
	page, err := httpx.ParsePage(r, []string{"username"}, "username")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var f UserFilter
	if s := q.Get("q"); s != "" {
		f.Query = &s
	}
	if s := q.Get("role"); s != "" {
		if _, ok := RolePermissions[s]; !ok {
			return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
				Fields: map[string]string{"role": "must be one of " + strings.Join(Roles(), ", ")}}
		}
		f.Role = &s
	}
	if s := q.Get("active"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
				Fields: map[string]string{"active": "must be true or false"}}
		}
		f.Active = &b
	}
	out, err := h.svc.ListUsers(r.Context(), f, page)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) handleUserCreate(w http.ResponseWriter, r *http.Request) error {
	var in NewUser
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	u, err := h.svc.CreateUser(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/users/"+u.ID)
	w.Header().Set("ETag", httpx.ETag(u.Version))
	httpx.JSON(w, http.StatusCreated, u)
	return nil
}

func (h *Handler) handleUserGet(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(u.Version))
	httpx.JSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) handleUserUpdate(w http.ResponseWriter, r *http.Request) error {
	version, err := httpx.IfMatch(r)
	if err != nil {
		return err
	}
	var in UserUpdate
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	u, err := h.svc.UpdateUser(r.Context(), r.PathValue("id"), version, in)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(u.Version))
	httpx.JSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) handleUserDisable(w http.ResponseWriter, r *http.Request) error {
	return h.setActive(w, r, false)
}

func (h *Handler) handleUserEnable(w http.ResponseWriter, r *http.Request) error {
	return h.setActive(w, r, true)
}

func (h *Handler) setActive(w http.ResponseWriter, r *http.Request, active bool) error {
	u, err := h.svc.SetActive(r.Context(), r.PathValue("id"), active)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) handleUserPasswordReset(w http.ResponseWriter, r *http.Request) error {
	var in PasswordReset
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	if err := h.svc.ResetPassword(r.Context(), r.PathValue("id"), in); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleUserSessionsRevoke(w http.ResponseWriter, r *http.Request) error {
	n, err := h.svc.RevokeSessions(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, RevokedSessions{Revoked: n})
	return nil
}

func (h *Handler) handleUserMFAReset(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.ResetMFA(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
