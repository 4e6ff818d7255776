package api

import "context"

// callerKey is the context key of the caller a Guard identified.
type callerKey struct{}

// WithCaller returns ctx carrying user ("" for an anonymous caller) as
// the request's caller; a Guard calls it for the requests it admits.
func WithCaller(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, callerKey{}, user)
}

// Caller returns the caller a Guard put in ctx, and whether one did.
func Caller(ctx context.Context) (string, bool) {
	user, ok := ctx.Value(callerKey{}).(string)
	return user, ok
}
