package server

import (
	"bytes"
	"net/http"
	"slices"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/templates"
)

// pageText is what a person reads on the error page of an authorization
// request: a headline and one sentence, in words, never fosite's
// developer text (which goes folded into the page's details).
type pageText struct{ headline, message string }

// textRedirect is the page for a redirect URI the client did not
// register: the one error that must not be sent back to the client.
var textRedirect = pageText{"Unregistered return address",
	"The application asked to send you back to an address it has not registered, so you were not sent there."}

var textUnsupported = pageText{"This kind of sign-in is not supported",
	"The application asked for a kind of sign-in that this service does not offer."}

var textInvalid = pageText{"This sign-in request is not valid",
	"The application sent a sign-in request that is incomplete or malformed."}

// authorizeTexts maps each OAuth error code an authorization request can
// end in (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6, RFC 9101, RFC 9126) to
// its page text; a code not listed gets textDefault.
var authorizeTexts = map[string]pageText{
	fosite.ErrInvalidClient.ErrorField: {"Unknown application",
		"The application that sent you here is not registered with this sign-in service."},
	fosite.ErrInvalidRequest.ErrorField:       textInvalid,
	fosite.ErrInvalidState.ErrorField:         textInvalid,
	fosite.ErrInvalidRequestObject.ErrorField: textInvalid,
	fosite.ErrInvalidRequestURI.ErrorField:    textInvalid,
	fosite.ErrInvalidScope.ErrorField: {"The application asked for too much",
		"The application asked for access it is not allowed to request."},
	fosite.ErrUnauthorizedClient.ErrorField: {"The application may not sign you in this way",
		"The application is not allowed to use this kind of sign-in."},
	fosite.ErrUnsupportedResponseType.ErrorField:  textUnsupported,
	fosite.ErrUnsupportedResponseMode.ErrorField:  textUnsupported,
	fosite.ErrRequestNotSupported.ErrorField:      textUnsupported,
	fosite.ErrRequestURINotSupported.ErrorField:   textUnsupported,
	fosite.ErrRegistrationNotSupported.ErrorField: textUnsupported,
	fosite.ErrAccessDenied.ErrorField: {"Access denied",
		"The request for access was denied."},
	fosite.ErrLoginRequired.ErrorField: {"You need to sign in",
		"The application asked to sign you in without showing a page, but you need to sign in first."},
	fosite.ErrConsentRequired.ErrorField: {"Your permission is needed",
		"The application asked for access without showing a page, but you have not allowed it yet."},
	fosite.ErrServerError.ErrorField: {"Something went wrong",
		"The sign-in could not be finished because of a problem on this service."},
}

var textDefault = pageText{"This sign-in cannot continue",
	"The application sent a sign-in request that this service cannot accept."}

// textFor picks the page text of rfc for the request ar (nil when fosite
// could not even parse it): by its code, except for the redirect URI.
func textFor(ar fosite.AuthorizeRequester, rfc *fosite.RFC6749Error) pageText {
	if rfc.ErrorField == fosite.ErrInvalidRequest.ErrorField && redirectUnregistered(ar) {
		return textRedirect
	}
	if t, ok := authorizeTexts[rfc.ErrorField]; ok {
		return t
	}
	return textDefault
}

// redirectUnregistered reports whether the request names a known client
// and a redirect URI that client did not register (or names none while
// the client registered several).
func redirectUnregistered(ar fosite.AuthorizeRequester) bool {
	if ar == nil || ar.GetClient() == nil {
		return false
	}
	registered := ar.GetClient().GetRedirectURIs()
	raw := ar.GetRequestForm().Get("redirect_uri")
	if raw == "" {
		return len(registered) != 1
	}
	return !slices.Contains(registered, raw)
}

// renderAuthorizeError shows rfc as a page: the headline and sentence for
// a person, the error code and request id for support, the developer's
// description folded away.
func (s *Server) renderAuthorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, rfc *fosite.RFC6749Error) {
	text := textFor(ar, rfc)
	status := http.StatusBadRequest
	s.render(w, r, status, func(b *bytes.Buffer) error {
		return s.pages.Error(b, templates.ErrorData{
			Page: s.page(r, text.headline), Status: status, Message: text.message,
			Hint:      "Go back to the application and try again. If it happens again, give its support the error code and request ID below.",
			Code:      rfc.ErrorField,
			RequestID: requestID(r.Context()),
			Details:   rfc.GetDescription(),
		})
	})
}
