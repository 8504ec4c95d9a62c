package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/connector"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// Who an upstream sign-in is here. A person known by (connector, subject)
// is their linked user. Otherwise, with link_by_email, the local user
// with the same email is linked, but only when both sides say the email is
// verified: an unverified address is whatever someone typed, and linking
// on it would hand an account to whoever typed it. Otherwise a new user is
// made just in time: named after the upstream username, with -2, -3, ...
// when taken (never joined to the user of that name), without a password,
// so the password form cannot sign them in.

// linkError is an upstream sign-in that cannot be joined to a local user.
type linkError struct{ reason string }

func (e *linkError) Error() string { return "connector link: " + e.reason }

const (
	linkUnverified = "unverified"
	linkAmbiguous  = "ambiguous"
	linkTaken      = "taken"
)

func (e *linkError) message(name string) string {
	switch e.reason {
	case linkUnverified:
		return "Your email address is not verified at " + name + " (or here), so your " + name + " account cannot be joined to your account here."
	case linkAmbiguous:
		return "More than one account here has your email address, so your " + name + " account cannot be joined to one of them."
	default:
		return "The account here with your email address is already joined to another " + name + " account."
	}
}

func (e *linkError) hint() string {
	if e.reason == linkUnverified {
		return "Verify your email address where you signed in, or ask the people who run this service to join the accounts."
	}
	return "Ask the people who run this service to join the accounts."
}

// upstreamSignedIn goes on with the authorization request after the
// upstream vouched for id: the local user, then MFA where required, the
// session (amr, and which connector), consent. amr is "fed" after a
// redirect to the upstream, whose own checks Latch did not see, and "pwd"
// after a password typed into Latch's own form and checked by a directory.
func (s *Server) upstreamSignedIn(w http.ResponseWriter, r *http.Request, up *upstream, id connector.Identity, amr, challenge string, ar fosite.AuthorizeRequester) {
	user, err := s.localUser(r.Context(), up, id)
	var linkErr *linkError
	switch {
	case errors.As(err, &linkErr):
		s.renderUpstreamError(w, r, up, err)
		return
	case err != nil:
		s.renderStorageError(w, r, err)
		return
	}
	ls, ok := s.completeSignIn(w, r, user.Username, []string{amr}, s.mfaPolicy(ar.GetClient(), ar.GetRequestForm()),
		mfaPending{Challenge: challenge, Connector: up.cfg.ID})
	if !ok {
		return
	}
	s.proceed(w, r, ar, challenge, ls, true)
}

// localUser is the local user of id, linked, joined or made now.
func (s *Server) localUser(ctx context.Context, up *upstream, id connector.Identity) (*storage.User, error) {
	cs := s.connectorStore()
	if cs == nil {
		return nil, errors.New("server: the store keeps no connectors")
	}
	link, err := cs.GetLink(ctx, up.cfg.ID, id.Subject)
	switch {
	case err == nil:
		return s.signedInAgain(ctx, cs, up, link, id)
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	if up.cfg.LinkByEmail && id.Email != "" {
		u, err := s.joinByEmail(ctx, cs, up, id)
		if u != nil || err != nil {
			return u, err
		}
	}
	return s.provision(ctx, cs, up, id)
}

// signedInAgain keeps what the upstream says now: its Data, and the
// profile of a user it made (a user joined by email keeps their own).
func (s *Server) signedInAgain(ctx context.Context, cs storage.Connectors, up *upstream, link *storage.Link, id connector.Identity) (*storage.User, error) {
	user, err := s.store.GetUser(ctx, link.Username)
	if err != nil {
		return nil, err
	}
	if err := cs.SetLinkData(ctx, up.cfg.ID, id.Subject, id.Data); err != nil {
		return nil, err
	}
	return s.updateProfile(ctx, user, id)
}

// updateProfile writes id's email, name and groups to user when the user
// was made by a connector (it has no password) and any of them changed.
func (s *Server) updateProfile(ctx context.Context, user *storage.User, id connector.Identity) (*storage.User, error) {
	if user.PasswordHash != "" {
		return user, nil
	}
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	if user.Email == id.Email && user.EmailVerified == id.EmailVerified && user.Name == id.Name && slices.Equal(user.Groups, groups) {
		return user, nil
	}
	u := *user
	u.Email, u.EmailVerified, u.Name, u.Groups = id.Email, id.EmailVerified, id.Name, groups
	if err := s.store.UpsertUser(ctx, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// joinByEmail links id to the one local user with its email, or returns
// nil when there is none.
func (s *Server) joinByEmail(ctx context.Context, cs storage.Connectors, up *upstream, id connector.Identity) (*storage.User, error) {
	found, err := cs.UsersByEmail(ctx, id.Email)
	switch {
	case err != nil:
		return nil, err
	case len(found) == 0:
		return nil, nil
	case len(found) > 1:
		return nil, &linkError{linkAmbiguous}
	case !id.EmailVerified || !found[0].EmailVerified:
		return nil, &linkError{linkUnverified}
	}
	err = cs.CreateLink(ctx, &storage.Link{ConnectorID: up.cfg.ID, Subject: id.Subject, Username: found[0].Username, Data: id.Data})
	if errors.Is(err, storage.ErrAlreadyExists) {
		// This subject was linked meanwhile (a concurrent first sign-in),
		// or the user is linked to another subject of this connector.
		if link, err := cs.GetLink(ctx, up.cfg.ID, id.Subject); err == nil {
			return s.store.GetUser(ctx, link.Username)
		}
		return nil, &linkError{linkTaken}
	}
	if err != nil {
		return nil, err
	}
	return found[0], nil
}

// maxProvisionTries bounds the usernames tried for a new user: the base,
// then base-2 up to base-N, then random suffixes.
const maxProvisionTries = 12

// provision makes a new user for id, linked to it.
func (s *Server) provision(ctx context.Context, cs storage.Connectors, up *upstream, id connector.Identity) (*storage.User, error) {
	base := usernameBase(id)
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	for i := 1; i <= maxProvisionTries; i++ {
		name, err := candidateName(base, i)
		if err != nil {
			return nil, err
		}
		switch err := users.CheckNotClientID(ctx, s.store, name); {
		case errors.Is(err, users.ErrNameIsClient):
			continue
		case err != nil:
			return nil, err
		}
		u := &storage.User{Username: name, Email: id.Email, EmailVerified: id.EmailVerified, Name: id.Name, Groups: groups}
		err = cs.CreateLinkedUser(ctx, u, &storage.Link{ConnectorID: up.cfg.ID, Subject: id.Subject, Username: name, Data: id.Data})
		if err == nil {
			s.log.InfoContext(ctx, "user provisioned from an upstream sign-in", "connector", up.cfg.ID, "username", name)
			return s.store.GetUser(ctx, name)
		}
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return nil, err
		}
		// The name is taken, or a concurrent first sign-in of the same
		// person linked them: then theirs is the user.
		if link, err := cs.GetLink(ctx, up.cfg.ID, id.Subject); err == nil {
			return s.store.GetUser(ctx, link.Username)
		}
	}
	return nil, fmt.Errorf("server: no free username for %q after %d tries", base, maxProvisionTries)
}

// maxUsernameBase keeps a made username, with its suffix, well inside
// the users table's 255.
const maxUsernameBase = 64

// usernameBase is the upstream username (or the email's local part),
// reduced to letters, digits and . _ @ -; "user" when nothing is left.
func usernameBase(id connector.Identity) string {
	raw := id.Username
	if raw == "" {
		raw, _, _ = strings.Cut(id.Email, "@")
	}
	var b strings.Builder
	for _, r := range raw {
		if b.Len() >= maxUsernameBase {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '@', r == '-':
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "user"
	}
	return b.String()
}

// candidateName is the i-th username tried for base.
func candidateName(base string, i int) (string, error) {
	switch {
	case i == 1:
		return base, nil
	case i < maxProvisionTries-2:
		return base + "-" + strconv.Itoa(i), nil
	}
	suffix, err := randomToken()
	if err != nil {
		return "", err
	}
	return base + "-" + suffix[:8], nil
}
