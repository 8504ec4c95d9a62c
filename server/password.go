package server

import (
	"context"
	"errors"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// The resource owner password credentials grant (RFC 6749 §4.3), for a
// client that lists "password" in its grant_types. RFC 9700 §2.4 says it
// MUST NOT be used: the client sees the password, and no second factor can
// be asked for. It exists for old clients that cannot be changed; users
// with a second factor (or whom policy asks for one) are refused.
//
// fosite's handler does the grant; Latch's Authenticator checks the
// password, with the login page's rate limits, through the handler's one
// storage hook, Authenticate.

// passwordCheck checks a password grant's credentials and returns the
// subject, or a passwordRefusal.
type passwordCheck func(ctx context.Context, client fosite.Client, username, password string) (string, error)

// passwordRefusal is why a password grant was refused, as the client must
// read it. It is also fosite.ErrNotFound, which fosite's handler turns into
// a generic invalid_grant; passwordGrant puts this one back.
type passwordRefusal struct{ rfc *fosite.RFC6749Error }

func (e passwordRefusal) Error() string        { return e.rfc.Error() }
func (e passwordRefusal) Is(target error) bool { return target == fosite.ErrNotFound }

// passwordStorage is the grant's storage: the store, and Authenticate.
type passwordStorage struct {
	storage.Store
	check passwordCheck
}

func (p passwordStorage) Authenticate(ctx context.Context, username, password string) (string, error) {
	client, _ := ctx.Value(passwordClientKey{}).(fosite.Client)
	return p.check(ctx, client, username, password)
}

type passwordClientKey struct{}

// passwordGrant is fosite's handler, told which client asks and answering
// Latch's refusals; it grants the scopes asked for, which fosite has
// checked against the client's, as client_credentials does.
type passwordGrant struct {
	*oauth2.ResourceOwnerPasswordCredentialsGrantHandler
}

func (g passwordGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	ctx = context.WithValue(ctx, passwordClientKey{}, ar.GetClient())
	err := g.ResourceOwnerPasswordCredentialsGrantHandler.HandleTokenEndpointRequest(ctx, ar)
	var refused passwordRefusal
	if errors.As(err, &refused) {
		return refused.rfc
	}
	if err != nil {
		return err
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	if sess, ok := oidcSession(ar.GetSession()); ok {
		sess.Username = sess.Subject
		sess.Claims = &jwt.IDTokenClaims{Subject: sess.Subject, AuthenticationMethodsReferences: []string{amrPassword},
			AuthenticationContextClassReference: acrPassword}
	}
	return nil
}

// callerKey carries the caller's limiter key (clientKey) to the password
// check, which fosite calls with the context alone.
type callerKey struct{}

// checkPasswordGrant is the passwordCheck of the server: the login page's
// Authenticator and rate limits, and a refusal for anyone who must give a
// second factor.
func (s *Server) checkPasswordGrant(ctx context.Context, client fosite.Client, username, password string) (string, error) {
	caller, _ := ctx.Value(callerKey{}).(string)
	s.passwordChecks <- struct{}{}
	user, err := s.users.Authenticate(ctx, username, password, caller)
	<-s.passwordChecks
	switch {
	case errors.Is(err, users.ErrRateLimited):
		return "", passwordRefusal{fosite.ErrInvalidGrant.WithDescription("Too many failed attempts for this user or from this address; try again in a few minutes.")}
	case errors.Is(err, users.ErrInvalidCredentials):
		return "", passwordRefusal{fosite.ErrInvalidGrant.WithDescription("The username or password is wrong.")}
	case err != nil:
		return "", err
	}
	need, err := s.needSecondFactor(ctx, user.Username, []string{amrPassword}, s.mfaPolicy(client, nil))
	if err != nil {
		return "", err
	}
	if need {
		return "", passwordRefusal{fosite.ErrInvalidGrant.WithDescription(
			"This account signs in with a second factor, which the password grant cannot ask for; use the authorization code flow.")}
	}
	return user.Username, nil
}
