package server

import (
	"context"
	"errors"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/connector"
	"github.com/latchauth/latch/storage"
)

// A refresh token of a grant from an upstream sign-in asks the upstream
// again (refresh_check, default on), so a person deleted or disabled
// upstream stops getting tokens here at their application's next refresh:
// the connector's Refresher answers connector.ErrGone, and the refresh is
// invalid_grant. An upstream that cannot be reached is a 503
// (temporarily_unavailable): the refresh token stays good for a retry,
// and nobody is let through unchecked.
//
// Every grant of one person through one connector shares the link's
// upstream token, and an upstream that rotates refresh tokens with reuse
// detection (Latch does) ends the whole upstream grant when one token is
// used twice. So concurrent checks of one link on an instance share one
// call upstream (singleflight); across instances they may still race,
// which the README says.

// upstreamCheck checks the person of a refresh request's grant upstream.
type upstreamCheck func(ctx context.Context, ar fosite.AccessRequester) error

// viaConnector marks the grant of sess as signed in through connector
// (the session travels from the code to every refresh token).
func viaConnector(sess fosite.Session, connector string) fosite.Session {
	if connector == "" {
		return sess
	}
	g, ok := sess.(*grantSession)
	if !ok {
		inner, isOIDC := oidcSession(sess)
		if !isOIDC {
			return sess
		}
		g = &grantSession{DefaultSession: inner}
	}
	g.Connector = connector
	return g
}

// upstreamChecked runs check after the refresh handler has found the
// refresh token good and loaded its grant's session, before anything is
// issued or rotated.
type upstreamChecked struct {
	fosite.TokenEndpointHandler
	check upstreamCheck
}

func (h upstreamChecked) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if err := h.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, ar); err != nil {
		return err
	}
	return h.check(ctx, ar)
}

// checkUpstream is the upstreamCheck of the server.
func (s *Server) checkUpstream(ctx context.Context, ar fosite.AccessRequester) error {
	g, ok := ar.GetSession().(*grantSession)
	if !ok || g.Connector == "" || g.DefaultSession == nil {
		return nil
	}
	up, err := s.findUpstream(ctx, g.Connector)
	if err != nil {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	if up == nil {
		return fosite.ErrInvalidGrant.WithHint("The identity provider the person signed in through is no longer configured.")
	}
	if !up.cfg.ChecksRefresh() || up.refresher == nil {
		return nil
	}
	cs := s.connectorStore()
	link, err := cs.GetUserLink(ctx, up.cfg.ID, g.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The person is no longer linked to the identity provider they signed in through.")
	} else if err != nil {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	user, err := s.store.GetUser(ctx, link.Username)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The person no longer exists.")
	} else if err != nil {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	_, err, _ = s.upstreamChecks.Do(up.cfg.ID+"\x00"+link.Subject, func() (any, error) {
		// Not the request's context: the callers sharing this call must
		// not fail because the first one went away.
		return nil, s.askUpstream(context.WithoutCancel(ctx), up, cs, link, user)
	})
	return err
}

// askUpstream is one refresh check of link's person at up.
func (s *Server) askUpstream(ctx context.Context, up *upstream, cs storage.Connectors, link *storage.Link, user *storage.User) error {
	got, err := up.refresher.Refresh(ctx, connector.Identity{Subject: link.Subject, Username: user.Username, Email: user.Email,
		EmailVerified: user.EmailVerified, Name: user.Name, Groups: user.Groups, Data: link.Data})
	var denied *connector.ErrDenied
	switch {
	case errors.Is(err, connector.ErrGone):
		s.log.InfoContext(ctx, "refresh refused: the person is gone upstream", "connector", up.cfg.ID, "username", user.Username)
		return fosite.ErrInvalidGrant.WithHint("The identity provider the person signed in through no longer knows them.")
	case errors.As(err, &denied):
		return fosite.ErrInvalidGrant.WithHint("The identity provider's rules no longer let the person sign in: " + denied.Reason + ".")
	case err != nil:
		s.log.WarnContext(ctx, "refresh check upstream failed", "connector", up.cfg.ID, "error", err)
		return fosite.ErrTemporarilyUnavailable.WithHint("The identity provider the person signed in through cannot be reached; try again later.")
	}
	if err := cs.SetLinkData(ctx, up.cfg.ID, link.Subject, got.Data); err != nil {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	if _, err := s.updateProfile(ctx, user, got); err != nil {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}
