// Package connector is the contract between Latch and an upstream identity
// provider: OpenID Connect and OAuth 2.0 providers that the browser is sent
// to (RedirectConnector), and directories that check a password typed into
// Latch's own login form (PasswordConnector, LDAP). The server turns what a
// connector returns into a local user, linked to (connector id, Subject).
package connector

import (
	"context"
	"errors"
	"net/http"
)

// Identity is what an upstream says about a person at sign-in or refresh.
type Identity struct {
	// Subject is the person's stable id at the upstream (the OIDC sub, an
	// LDAP entry's DN or entryUUID, a GitHub user id); never an email.
	Subject       string
	Username      string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// Data is what the connector needs to check the person again at
	// refresh (an upstream refresh token, an LDAP DN). Latch stores it
	// sealed, like other secrets at rest, and hands it back to Refresh.
	Data []byte
}

// ErrGone means the upstream no longer knows the person, or no longer lets
// them sign in: a refresh that depends on them fails with invalid_grant.
var ErrGone = errors.New("connector: the person is no longer known upstream")

// ErrDenied means the upstream knows the person but a connector rule (allowed
// groups or domains) refuses them. Its message is shown to the person.
type ErrDenied struct{ Reason string }

func (e *ErrDenied) Error() string { return "connector: sign-in refused: " + e.Reason }

// PasswordConnector checks a username and password typed into Latch's own
// login form.
type PasswordConnector interface {
	// Login answers ok=false for an unknown user or a wrong password, and an
	// error only when the upstream cannot answer (or ErrDenied by a rule).
	Login(ctx context.Context, username, password string) (id Identity, ok bool, err error)
}

// RedirectConnector sends the browser to the upstream and takes its answer at
// ISSUER/login/ID/callback.
type RedirectConnector interface {
	// LoginURL is where the browser goes. state, nonce and the PKCE
	// verifier are Latch's, generated per attempt and kept server-side.
	LoginURL(state, nonce, pkceVerifier string) (string, error)
	// HandleCallback checks the upstream's answer on the callback request
	// (state already matched by the caller) and returns who signed in.
	HandleCallback(ctx context.Context, r *http.Request, nonce, pkceVerifier string) (Identity, error)
}

// Refresher checks a person again when a refresh token from an upstream
// sign-in is used; it answers ErrGone when the person is gone upstream.
type Refresher interface {
	Refresh(ctx context.Context, id Identity) (Identity, error)
}
