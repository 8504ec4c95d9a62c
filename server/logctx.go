package server

import (
	"context"
	"log/slog"
)

// requestIDHandler adds the request_id of the request a record was written
// for, read from the record's context, as dex's request-context logger
// does: every *Context log call made while serving a request carries the
// id the caller sees in X-Request-Id, so support can find every line of
// one request from the id on an error page or in a client's log. Lines
// logged outside a request (the janitor, start-up) have no id and get none.
type requestIDHandler struct{ slog.Handler }

func withRequestIDs(h slog.Handler) slog.Handler {
	if _, done := h.(requestIDHandler); done {
		return h
	}
	return requestIDHandler{h}
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
