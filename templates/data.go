package templates

import "html/template"

// Page is common to every page.
type Page struct {
	Title string
	// Static is the URL path prefix of static files, e.g. "/static"; empty
	// means "/static".
	Static string
	// CSRFField is the hidden CSRF input, rendered inside every form as-is
	// (from gorilla/csrf's TemplateField).
	CSRFField template.HTML
	// Issuer is shown small in the footer.
	Issuer string
}

// LoginData is the sign-in page.
type LoginData struct {
	Page
	Action     string // form action URL (POST)
	ClientName string // "Sign in to continue to <ClientName>"
	Username   string // prefilled after a failed attempt
	Error      string // e.g. "Wrong username or password." or the rate-limit message
	// Hidden holds extra hidden inputs, rendered sorted by name (e.g.
	// "login_challenge").
	Hidden map[string]string
	// Dev adds dev mode's second form: a subject and its claims (a JSON
	// object), with the same hidden fields. Subject, Claims and DevError
	// refill it after a refusal.
	Dev      bool
	Subject  string
	Claims   string
	DevError string
	// PasskeyBegin, when set, offers "Sign in with a passkey" (with
	// JavaScript): where the script gets the WebAuthn options.
	PasskeyBegin string
	// NoPasswordForm hides the username and password form (login:
	// password_form: false, every person is upstream).
	NoPasswordForm bool
	// Connectors are the "Sign in with NAME" buttons of the upstream
	// identity providers.
	Connectors []ConnectorButton
	// Via names the directory a password form checks against (a
	// password connector's own form): "Sign in with Corp LDAP".
	Via string
}

// ConnectorButton is one upstream identity provider on the login page.
type ConnectorButton struct {
	Name string
	URL  string // GET: starts the sign-in there
}

// Scope is one requested scope as the consent page lists it.
type Scope struct{ Name, Description string }

// ConsentData is the page that asks to allow or deny a client.
type ConsentData struct {
	Page
	Action     string
	ClientName string
	ClientID   string
	Username   string  // "Signed in as <Username>"
	Scopes     []Scope // listed in words: Description, with Name in small code text
	Hidden     map[string]string
	// Remember offers the "Remember this decision" checkbox; the device
	// flow's consent is always asked, so its page leaves it out.
	Remember bool
}

// DeviceData is the page that asks for a device's user code.
type DeviceData struct {
	Page
	Action   string
	UserCode string // prefilled when given (?user_code=)
	Error    string
}

// LogoutData is the sign-out confirmation page.
type LogoutData struct {
	Page
	Action     string
	ClientName string // may be empty
	Hidden     map[string]string
}

// ErrorData is an error page.
type ErrorData struct {
	Page
	Status  int    // HTTP status shown small
	Message string // what went wrong, in words
	Hint    string // optional: what the person can do
	// Code is the OAuth error code (RFC 6749 §4.1.2.1), for whoever the
	// person asks for help; RequestID is the X-Request-Id of the response,
	// which finds the server's log line. Both optional.
	Code      string
	RequestID string
	// Details is the developer's description of the error (fosite's
	// description and hint), shown folded: it names parameters a person
	// cannot act on, but the application's developer can.
	Details string
}

var scopeDescriptions = map[string]string{
	"openid":         "Sign you in with your account",
	"profile":        "Your name and username",
	"email":          "Your email address and whether it is verified",
	"groups":         "The groups you belong to",
	"offline_access": "Stay signed in: keep access while you are away",
}

// ScopeDescription gives words for the standard scopes and a generic
// "Access to <name>" for any other.
func ScopeDescription(name string) string {
	if d, ok := scopeDescriptions[name]; ok {
		return d
	}
	return "Access to " + name
}

// MFAData is the second-factor step of signing in, and the TOTP
// enrolment of the account page. With RecoveryCodes it shows them once,
// with a link to Continue; otherwise the second factors the person has: a
// code form (Code), below a QR code and the secret in text when QRCode is
// set (enrolment), and a passkey button (PasskeyBegin).
type MFAData struct {
	Page
	Action   string
	Username string
	// QRCode is a data: URI of a PNG made by the server, so the page
	// loads nothing from anyone else (img-src 'self' data:).
	QRCode        template.URL
	Secret        string
	Error         string
	RecoveryCodes []string
	Continue      string
	Hidden        map[string]string
	// Code shows the code form (a TOTP or recovery code).
	Code bool
	// PasskeyBegin, when set, offers "Use a passkey" (with JavaScript):
	// where the script gets the WebAuthn options.
	PasskeyBegin string
	// Reauth asks for the current password with the code (the account
	// page's enrolment); Cancel, when set, links back to that page.
	Reauth bool
	Cancel string
}

// AccountData is the account page of a signed-in person.
type AccountData struct {
	Page
	Username string
	Name     string
	Notice   string // what the last action did, e.g. "Password changed."
	Error    string // why the last action failed
	// Action is the path the page's forms post below, e.g. "/account".
	Action       string
	Sessions     []AccountSession
	Applications []AccountApplication
	// LogoutURL signs this browser out (the RP-initiated logout page).
	LogoutURL string
	// PasskeysOn shows the passkeys section (the issuer is on a domain).
	PasskeysOn bool
	Passkeys   []AccountPasskey
	// TOTP: the person has an authenticator app, on since TOTPSince,
	// with RecoveryCodesLeft unused recovery codes.
	TOTP              bool
	TOTPSince         string
	RecoveryCodesLeft int
}

// AccountPasskey is one passkey on the account page.
type AccountPasskey struct {
	ID       string
	Name     string
	Created  string
	LastUsed string // "" when never used
	Synced   bool   // backup-eligible: a synced passkey
}

// AccountSession is one login session on the account page.
type AccountSession struct {
	Handle   string // posted back to sign it out
	Device   string // "Firefox on Linux"
	Address  string
	SignedIn string // formatted times
	LastSeen string
	Current  bool // the browser showing the page
}

// AccountApplication is one application the person allowed.
type AccountApplication struct {
	ClientID   string
	Name       string
	Scopes     []Scope
	Remembered bool
	LiveTokens bool
	Since      string
}
