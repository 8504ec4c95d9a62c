package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchauth/latch/clients"
)

// problems collects what Validate finds; each entry starts with its key path.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// Validate reports every problem of f at once, joined with errors.Join; each
// message starts with the key path, e.g. "clients[1].redirect_uris[0]: ...".
// It only looks at f: it reads no files and opens no database, so it can run
// before anything is started.
func (f File) Validate() error {
	var p problems
	p.server(f)
	p.tokens(f.Tokens)
	p.trustedIssuers(f.TrustedIssuers)
	p.trustedProxies(f.TrustedProxies)
	p.clients(f.Clients, clients.Rules{InsecureHTTP: f.InsecureHTTP})
	p.registration(f.Registration)
	p.users(f.Users)
	p.connectors(f.Connectors)
	p.usernamesNotClientIDs(f)
	return errors.Join(p...)
}

func (p *problems) server(f File) {
	p.issuer(f.Issuer, f.InsecureHTTP)
	if _, port, err := net.SplitHostPort(f.Listen); err != nil {
		p.add("listen", "must be host:port (e.g. 127.0.0.1:8080 or :8080), got %q", f.Listen)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.add("listen", "port must be a number from 0 to 65535, got %q", port)
	}
	switch {
	case f.TLS.CertFile != "" && f.TLS.KeyFile == "":
		p.add("tls.key_file", "must be set when tls.cert_file is")
	case f.TLS.CertFile == "" && f.TLS.KeyFile != "":
		p.add("tls.cert_file", "must be set when tls.key_file is")
	}
	p.atLeast("shutdown_timeout", f.ShutdownTimeout, 0)
	p.oneOf("log.level", f.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", f.Log.Format, "text", "json")
	p.atLeast("janitor.interval", f.Janitor.Interval, 0)
	p.oneOf("database.driver", f.Database.Driver, "sqlite", "postgres")
	if f.Database.DSN == "" {
		p.add("database.dsn", "must not be empty (\":memory:\" for an ephemeral SQLite store)")
	}
	if n := len(f.Secrets.System); n > 0 && n < 32 {
		p.add("secrets.system", "must be at least 32 bytes, got %d; leave it empty to have one generated", n)
	}
}

// issuer checks what OpenID Connect Discovery requires of an issuer, and
// refuses plain http off the local machine unless insecure_http says so.
func (p *problems) issuer(s string, insecure bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		p.add("issuer", "must be an absolute http(s) URL, got %q", s)
		return
	}
	if u.User != nil {
		p.add("issuer", "must not contain user information")
	}
	if u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "#") {
		p.add("issuer", "must not have a query or fragment")
	}
	if strings.HasSuffix(u.Path, "/") {
		// Discovery appends "/.well-known/..."; a trailing slash makes the
		// issuer in the tokens differ from the one clients configured.
		p.add("issuer", "must not end with a slash; use %q", strings.TrimRight(s, "/"))
	}
	if u.Scheme == "http" && !insecure && !isLoopback(u.Hostname()) {
		p.add("issuer", "http is allowed only for a loopback host (127.0.0.1, ::1, localhost): across a network, "+
			"plain http sends client secrets, passwords, tokens and session cookies in clear to anyone on the path. "+
			"Use https (tls.cert_file and tls.key_file, or a proxy that terminates TLS), "+
			"or set insecure_http: true to accept the risk (never in production)")
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (p *problems) tokens(t Tokens) {
	for _, l := range []struct {
		key string
		d   Duration
	}{
		{"tokens.access_token_lifespan", t.AccessTokenLifespan},
		{"tokens.refresh_token_lifespan", t.RefreshTokenLifespan},
		{"tokens.authorize_code_lifespan", t.AuthorizeCodeLifespan},
		{"tokens.id_token_lifespan", t.IDTokenLifespan},
		{"tokens.device_code_lifespan", t.DeviceCodeLifespan},
	} {
		p.atLeast(l.key, l.d, time.Second)
	}
	p.oneOf("tokens.access_token_format", t.AccessTokenFormat, "opaque", "jwt")
	p.atLeast("tokens.refresh_token_grace_period", t.RefreshTokenGracePeriod, 0)
	p.oneOf("tokens.id_token_signing_alg", t.IDTokenSigningAlg, "RS256", "ES256")
}

func (p *problems) trustedIssuers(list []TrustedIssuer) {
	seen := map[string]int{}
	for i, t := range list {
		key := fmt.Sprintf("trusted_issuers[%d]", i)
		if !absoluteURL(t.Issuer) {
			p.add(key+".issuer", "must be an absolute URL, got %q", t.Issuer)
		}
		switch {
		case t.Subject == "" && !t.AllowAnySubject:
			p.add(key, "set subject, or allow_any_subject: true")
		case t.Subject != "" && t.AllowAnySubject:
			p.add(key, "set only one of subject and allow_any_subject")
		}
		switch {
		case t.JWKSFile == "" && len(t.JWKS) == 0:
			p.add(key, "set jwks_file or jwks")
		case t.JWKSFile != "" && len(t.JWKS) > 0:
			p.add(key, "set only one of jwks_file and jwks")
		case len(t.JWKS) > 0:
			p.jwks(key+".jwks", t.JWKS)
		}
		p.words(key+".scopes", t.Scopes)
		trust := t.Issuer + "\x00" + t.Subject
		if t.AllowAnySubject {
			trust = t.Issuer + "\x00*"
		}
		if j, dup := seen[trust]; dup {
			p.add(key, "repeats the issuer and subject of trusted_issuers[%d]", j)
		} else {
			seen[trust] = i
		}
	}
}

func (p *problems) atLeast(key string, d Duration, min time.Duration) {
	if d.Duration < min {
		p.add(key, "must be at least %s, got %s", Duration{min}, d)
	}
}

func (p *problems) oneOf(key, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	p.add(key, "must be one of %s, got %q", strings.Join(allowed, " | "), value)
}

// words checks lists of scopes, audiences and groups: no empty entries, no
// whitespace (scopes travel space-separated).
func (p *problems) words(key string, list []string) {
	for j, w := range list {
		if w == "" || strings.ContainsAny(w, " \t\r\n") {
			p.add(fmt.Sprintf("%s[%d]", key, j), "must be non-empty and without spaces, got %q", w)
		}
	}
}

// absoluteURL accepts any scheme (native apps redirect to custom ones) but
// insists on a host for http and https.
func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return false
	}
	return (u.Scheme != "http" && u.Scheme != "https") || u.Host != ""
}

// trustedProxies checks that each entry is a CIDR (or a single address).
func (p *problems) trustedProxies(list []string) {
	for i, cidr := range list {
		if _, err := ParsePrefix(cidr); err != nil {
			p.add(fmt.Sprintf("trusted_proxies[%d]", i), "must be a CIDR such as 10.0.0.0/8 or an address, got %q", cidr)
		}
	}
}

// ParsePrefix reads a CIDR, or a lone address as the prefix of just itself.
func ParsePrefix(s string) (netip.Prefix, error) {
	if pfx, err := netip.ParsePrefix(s); err == nil {
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
