package identity

import (
	"net/http"

	"github.com/hospital-erp/hospital-erp/internal/httpx"
)

// Handler serves /api/v1/auth.
type Handler struct {
	svc *Service
}

// NewHandler returns the HTTP handler of the identity module.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

// Routes registers the module's routes.
func (h *Handler) Routes(r *httpx.Router) {
	r.Handle("POST /api/v1/auth/login", h.handleLogin)
	r.Handle("POST /api/v1/auth/refresh", h.handleRefresh)
	r.Handle("POST /api/v1/auth/logout", h.handleLogout)
	r.Handle("GET /api/v1/auth/me", h.handleMe)
	r.Handle("GET /api/v1/auth/jwks.json", h.handleJWKS)
	r.Handle("POST /api/v1/auth/ws-ticket", h.handleTicket)
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

func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var req LoginRequest
	if err := httpx.Decode(r, &req); err != nil {
		return err
	}
	ip := ""
	if info := httpx.InfoFrom(r.Context()); info != nil {
		ip = info.ClientIP.String()
	}
	tok, refresh, err := h.svc.Login(r.Context(), req, ip, r.UserAgent())
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
