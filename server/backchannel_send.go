package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// The logout token (Back-Channel Logout 1.0 §2.4) and its POST (§2.5).

const (
	// logoutTokenType is the typ header §2.4 recommends, so that a logout
	// token is never taken for an ID token or an access token.
	logoutTokenType  = "logout+jwt"
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenLifespan is short: the token is sent at once, and a
	// retry signs a new one.
	logoutTokenLifespan = 2 * time.Minute
	// maxLogoutAnswer is how much of a client's answer is read (and
	// thrown away) so the connection can be reused.
	maxLogoutAnswer = 4 << 10
)

// logoutSender is the worker's state: its HTTP clients, its wake-up call,
// and how many of the store's drops the metrics already count.
type logoutSender struct {
	// client sends to the URIs of clients an operator created; public
	// sends to those of dynamically registered clients (RFC 7591), which
	// anyone may have registered when registration is open: it connects
	// to public addresses only, checked after name resolution, so that a
	// registered URI cannot make Latch POST to its own host or network.
	client, public *http.Client
	wake           chan struct{}
	droppedSeen    atomic.Int64
}

var errNotPublic = errors.New("the address is not public (a dynamically registered client's back-channel URI must reach a public address)")

func newLogoutSender(o *BackchannelOptions) *logoutSender {
	o.fillDefaults()
	newClient := func(t *http.Transport) *http.Client {
		return &http.Client{
			Timeout:   o.Timeout,
			Transport: t,
			// A redirect is the client's answer, not an instruction: the
			// token goes only to the registered URI.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	public := http.DefaultTransport.(*http.Transport).Clone()
	public.Proxy = nil // the address checked must be the client's, not a proxy's
	public.DialContext = (&net.Dialer{Timeout: o.Timeout, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return errNotPublic
		}
		if ip, err := netip.ParseAddr(host); err != nil || !publicAddr(ip) {
			return errNotPublic
		}
		return nil
	}}).DialContext
	return &logoutSender{
		wake:   make(chan struct{}, 1),
		client: newClient(http.DefaultTransport.(*http.Transport).Clone()),
		public: newClient(public),
	}
}

// publicAddr reports whether ip is a public unicast address: not
// loopback, private (RFC 1918, RFC 4193), link-local, CGNAT shared space
// (RFC 6598) or unspecified.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip)
}

// sendLogout makes one attempt at d: it returns the outcome, the client's
// HTTP status when there was one, and what went wrong.
func (s *Server) sendLogout(ctx context.Context, d storage.LogoutDelivery) (outcome string, status int, err error) {
	if !s.now().Before(d.ExpiresAt) {
		return outcomeDropped, 0, errors.New("the delivery waited too long")
	}
	fc, err := s.store.GetClient(ctx, d.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return outcomeDropped, 0, errors.New("the client is gone")
	} else if err != nil {
		return outcomeRetry, 0, err
	}
	c, ok := fc.(*clients.Client)
	if !ok || c.BackchannelLogoutURI == "" {
		return outcomeDropped, 0, errors.New("the client no longer has a backchannel_logout_uri")
	}
	if err := s.clientRules().CheckBackchannelLogoutURI(c.BackchannelLogoutURI); err != nil {
		return outcomeDropped, 0, err // stored before the rules were what they are
	}
	token, err := s.logoutToken(ctx, d)
	if err != nil {
		return outcomeRetry, 0, err
	}
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(body))
	if err != nil {
		return outcomeDropped, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	httpClient := s.logouts.client
	if c.RegistrationTokenHash != "" {
		httpClient = s.logouts.public
	}
	res, err := httpClient.Do(req)
	if errors.Is(err, errNotPublic) {
		return outcomeDropped, 0, errNotPublic
	}
	if err != nil {
		// Without the URL, whose query may be the client's secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return outcomeRetry, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxLogoutAnswer))
	res.Body.Close()
	switch code := res.StatusCode; {
	case code == http.StatusOK || code == http.StatusNoContent:
		return outcomeDelivered, code, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return outcomeRetry, code, fmt.Errorf("the client answered %d", code)
	default:
		// §2.8: a client that cannot use the token answers 400; sending
		// the same again would be refused again.
		return outcomeFailed, code, fmt.Errorf("the client answered %d", code)
	}
}

// logoutToken signs d's logout token with the current signing key: iss,
// aud, iat, exp, jti, events, sub and sid (§2.4), never a nonce (which
// would let it pass for an ID token). Each attempt signs a new token with
// its own jti (the delivery's ID and the attempt number), so that a
// client that keeps seen jtis never mistakes a retry for a replay.
func (s *Server) logoutToken(ctx context.Context, d storage.LogoutDelivery) (string, error) {
	now := s.now()
	claims := jwt.MapClaims{
		"iss":    s.cfg.Issuer,
		"aud":    d.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenLifespan).Unix(),
		"jti":    d.ID + "." + strconv.Itoa(d.Attempts),
		"events": map[string]any{backchannelEvent: map[string]any{}},
		"sub":    d.Subject,
		"sid":    sessionSID(d.SessionHandle),
	}
	token, _, err := s.signer.Generate(ctx, claims, &jwt.Headers{Extra: map[string]any{"typ": logoutTokenType}})
	return token, err
}
