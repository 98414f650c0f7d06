package web

import (
	"context"
	"net/http"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// ticketResponse is the answer of POST /events/ticket.
type ticketResponse struct {
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}

// handleEventsTicket gets app.js a ticket for the backend's event
// WebSocket. The browser cannot read the access token (it is sealed in an
// HttpOnly cookie), so the web server asks for the ticket on its behalf.
// checkCSRF has checked the X-CSRF-Token header.
func (s *Server) handleEventsTicket(w http.ResponseWriter, r *http.Request) error {
	var t identity.Ticket
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		t, err = api.WSTicket(ctx)
		return err
	})
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, ticketResponse{Ticket: t.Ticket, ExpiresIn: t.ExpiresIn})
	return nil
}
