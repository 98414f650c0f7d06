package hospital

import (
	"context"
	"time"
)

// Actor is the authenticated user on whose behalf a request runs.
type Actor struct {
	UserID       string
	Username     string
	Role         string
	DepartmentID string
	WardIDs      []string
	SessionID    string
	// Permissions is the set granted to Role, resolved once at
	// authentication. It is empty while a user who must use multi-factor
	// authentication has not enrolled yet.
	Permissions map[string]bool
	// MFAEnrolmentRequired is true for such a restricted session.
	MFAEnrolmentRequired bool
}

// Can reports whether the actor holds permission p.
func (a *Actor) Can(p string) bool {
	return a != nil && a.Permissions[p]
}

type actorKey struct{}

// WithActor returns a context carrying a.
func WithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or nil for anonymous requests.
func ActorFrom(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}

// Require returns the actor in ctx when it holds permission p (any
// authenticated actor when p is ""). It returns an EUNAUTHORIZED error for
// anonymous requests and EFORBIDDEN otherwise.
func Require(ctx context.Context, p string) (*Actor, error) {
	a := ActorFrom(ctx)
	if a == nil {
		return nil, Errorf(EUNAUTHORIZED, "Authentication required.")
	}
	if p != "" && !a.Can(p) {
		return nil, Errorf(EFORBIDDEN, "You do not have permission to do this (%s).", p)
	}
	return a, nil
}

type requestIDKey struct{}

// WithRequestID returns a context carrying the request id, used by audit rows.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id in ctx or "".
func RequestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

type clientKey struct{}

// Client is where a request comes from, for the audit trail.
type Client struct {
	IP        string
	UserAgent string
}

// WithClient returns a context carrying the request's client.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the client of the request in ctx.
func ClientFrom(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}

// Clock tells the time; tests pass a fixed one.
type Clock func() time.Time
