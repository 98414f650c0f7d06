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
	SessionID    string
	// Permissions is the set granted to Role, resolved once at authentication.
	Permissions map[string]bool
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

// Require returns the actor in ctx when it holds permission p. It returns an
// EUNAUTHORIZED error for anonymous requests and EFORBIDDEN otherwise.
func Require(ctx context.Context, p string) (*Actor, error) {
	a := ActorFrom(ctx)
	if a == nil {
		return nil, Errorf(EUNAUTHORIZED, "Authentication required.")
	}
	if !a.Can(p) {
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

// Clock tells the time; tests pass a fixed one.
type Clock func() time.Time
