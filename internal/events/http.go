package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
)

// TopicPermissions says which permission a subscriber needs for a topic.
// A topic missing here cannot be subscribed to.
var TopicPermissions = map[string]string{
	"beds":         "bed.read",
	"patients":     "patient.read",
	"queue":        "appointment.read",
	"appointments": "appointment.read",
}

// Authenticator checks WebSocket tickets (browsers cannot send an
// Authorization header on the upgrade request).
type Authenticator interface {
	AuthenticateTicket(ctx context.Context, ticket string) (*hospital.Actor, error)
}

// Handler serves GET /api/v1/events, the WebSocket.
type Handler struct {
	bus      *Bus
	auth     Authenticator
	log      *slog.Logger
	ping     time.Duration
	origins  []string
	shutdown <-chan struct{}
	gauge    func(delta float64)

	maxPerUser, max int
	mu              sync.Mutex
	open            int            // streams open
	perUser         map[string]int // streams open per user id
}

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	PingInterval time.Duration
	// MaxPerUser and Max bound the streams open at once, per user and in
	// all: each holds about 75 KB (4,000 streams, 300 MB), and nothing
	// else stopped a signed-in user from opening streams, within the rate
	// limit, until the process ran out of memory. 0: no bound.
	MaxPerUser, Max int
	// OriginPatterns are the allowed browser origins' hosts (from PUBLIC_URL).
	OriginPatterns []string
	// Shutdown is closed when the server stops: connections close with
	// "going away" so clients reconnect to another replica.
	Shutdown <-chan struct{}
	// Connections reports +1/-1 for the connections gauge.
	Connections func(delta float64)
}

// NewHandler returns the WebSocket handler.
func NewHandler(bus *Bus, auth Authenticator, log *slog.Logger, o HandlerOptions) *Handler {
	if o.Connections == nil {
		o.Connections = func(float64) {}
	}
	return &Handler{bus: bus, auth: auth, log: log, ping: o.PingInterval, origins: o.OriginPatterns,
		shutdown: o.Shutdown, gauge: o.Connections, maxPerUser: o.MaxPerUser, max: o.Max, perUser: map[string]int{}}
}

// take counts a stream of user as open, or refuses it: 429 when the user
// has MaxPerUser open, 503 (another replica may take it) when the process
// has Max. release undoes it.
func (h *Handler) take(user string) (release func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.maxPerUser > 0 && h.perUser[user] >= h.maxPerUser:
		return nil, &hospital.Error{Code: hospital.ETOOMANY, RetryAfter: 10 * time.Second,
			Message: fmt.Sprintf("You have %d live views open; close some tabs and try again.", h.perUser[user])}
	case h.max > 0 && h.open >= h.max:
		return nil, &hospital.Error{Code: hospital.EUNAVAILABLE, RetryAfter: 5 * time.Second,
			Message: "This server has as many live views open as it keeps; please retry."}
	}
	h.open++
	h.perUser[user]++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.open--
		if h.perUser[user]--; h.perUser[user] == 0 {
			delete(h.perUser, user)
		}
	}, nil
}

// Routes registers the module's routes.
func (h *Handler) Routes(r *httpx.Router) {
	// Authentication (bearer token or ?ticket=) happens before the route
	// runs; topics are checked against permissions below.
	r.Handle("GET /api/v1/events", httpx.Authenticated, h.handleEvents)
}

// clientMessage is what a client may send.
type clientMessage struct {
	Action string   `json:"action"` // "subscribe" or "ping"
	Topics []string `json:"topics"`
}

// serverMessage frames what the server sends besides events.
type serverMessage struct {
	Type   string   `json:"type"` // "hello", "subscribed", "pong", "error"
	Topics []string `json:"topics,omitempty"`
	Error  string   `json:"error,omitempty"`
}

func (h *Handler) handleEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	actor := hospital.ActorFrom(ctx)
	if actor == nil {
		t := r.URL.Query().Get("ticket")
		if t == "" {
			return hospital.Errorf(hospital.EUNAUTHORIZED, "Open the event stream with ?ticket= from POST /api/v1/auth/ws-ticket or a bearer token.")
		}
		var err error
		if actor, err = h.auth.AuthenticateTicket(ctx, t); err != nil {
			return err
		}
		if info := httpx.InfoFrom(ctx); info != nil {
			info.UserID = actor.UserID
		}
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return hospital.Errorf(hospital.EINVALID, "This endpoint speaks WebSocket only.")
	}
	topics, err := allowedTopics(actor, splitTopics(r.URL.Query().Get("topics")))
	if err != nil {
		return err
	}
	release, err := h.take(actor.UserID)
	if err != nil {
		return err
	}
	defer release()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.origins})
	if err != nil {
		// Accept has written the error response itself.
		return nil
	}
	conn.SetReadLimit(4096)
	h.gauge(1)
	defer h.gauge(-1)

	sub := h.bus.Subscribe(topics, r.URL.Query().Get("since"))
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	go h.readLoop(ctx, cancel, conn, actor, sub)
	if err := writeJSON(ctx, conn, serverMessage{Type: "hello", Topics: topics}); err != nil {
		return nil
	}
	ticker := time.NewTicker(h.ping)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusNormalClosure, "")
			return nil
		case <-h.shutdown:
			conn.Close(websocket.StatusGoingAway, "server restarting; reconnect with since=")
			return nil
		case <-ticker.C:
			pctx, pcancel := context.WithTimeout(ctx, h.ping)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				conn.CloseNow()
				return nil
			}
		case e := <-sub.C:
			if e.Type == Resync {
				sub.CatchUp()
			}
			if err := writeJSON(ctx, conn, e); err != nil {
				conn.CloseNow()
				return nil
			}
		}
	}
}

func (h *Handler) readLoop(ctx context.Context, cancel context.CancelFunc, conn *websocket.Conn, actor *hospital.Actor, sub *Subscription) {
	defer cancel()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var m clientMessage
		if err := json.Unmarshal(data, &m); err != nil {
			_ = writeJSON(ctx, conn, serverMessage{Type: "error", Error: "messages must be JSON objects"})
			continue
		}
		switch m.Action {
		case "ping":
			_ = writeJSON(ctx, conn, serverMessage{Type: "pong"})
		case "subscribe":
			topics, err := allowedTopics(actor, m.Topics)
			if err != nil {
				_ = writeJSON(ctx, conn, serverMessage{Type: "error", Error: hospital.ErrorMessage(err)})
				continue
			}
			sub.SetTopics(topics)
			_ = writeJSON(ctx, conn, serverMessage{Type: "subscribed", Topics: topics})
		default:
			_ = writeJSON(ctx, conn, serverMessage{Type: "error", Error: `unknown action; use "subscribe" or "ping"`})
		}
	}
}

func writeJSON(ctx context.Context, conn *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, b)
}

func splitTopics(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// allowedTopics refuses unknown topics and topics the actor may not see.
func allowedTopics(actor *hospital.Actor, topics []string) ([]string, error) {
	if len(topics) > 16 {
		return nil, hospital.Errorf(hospital.EINVALID, "Subscribe to at most 16 topics.")
	}
	for _, t := range topics {
		perm, ok := TopicPermissions[t]
		if !ok {
			return nil, hospital.Errorf(hospital.EINVALID, "Unknown topic %q.", t)
		}
		if !actor.Can(perm) {
			return nil, hospital.Errorf(hospital.EFORBIDDEN, "You may not subscribe to %q (%s).", t, perm)
		}
	}
	return topics, nil
}
