package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Who is calling: every per-address limit (failed logins, wrong user
// codes, registration, pending authorization requests) keys on the address
// clientAddr returns, and the request log shows it.
//
// Behind a reverse proxy every request comes from the proxy, so a limit
// keyed on RemoteAddr would lock out everyone at once. The forwarding
// headers, though, are written by whoever sends the request: they are read
// only when the connection comes from a configured trusted proxy
// (Config.TrustedProxies), and then walked from the right, skipping
// further trusted proxies, to the first address no trusted proxy vouches
// for (the address the nearest trusted proxy saw).

// clientAddr is the address of the caller: RemoteAddr, or, when that is a
// trusted proxy, the first untrusted address of X-Forwarded-For or
// Forwarded counted from the right. An unparsable address yields the zero
// Addr, which limits group together.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer := parseHostAddr(r.RemoteAddr)
	if !s.trustedProxy(peer) {
		return peer
	}
	hops := forwardedFor(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHostAddr(hops[i])
		if !a.IsValid() {
			// A hop that is not an address (Forwarded's "unknown" or an
			// obfuscated identifier) ends what can be believed.
			return peer
		}
		if !s.trustedProxy(a) {
			return a
		}
		peer = a
	}
	return peer
}

// clientKey is clientAddr as a limiter key: IPv6 addresses are grouped by
// their /64, since one subscriber usually holds a whole /64 and could
// otherwise spend a fresh address on every request.
func (s *Server) clientKey(r *http.Request) string {
	return addrKey(s.clientAddr(r))
}

func addrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor lists the client hops a proxy chain recorded, nearest last:
// Forwarded's for= parameters (RFC 7239) when that header is present,
// X-Forwarded-For otherwise.
func forwardedFor(h http.Header) []string {
	var hops []string
	if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		for _, line := range fwd {
			for _, elem := range strings.Split(line, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						hops = append(hops, strings.Trim(v, `"`))
					}
				}
			}
		}
		return hops
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for _, hop := range strings.Split(line, ",") {
			hops = append(hops, strings.TrimSpace(hop))
		}
	}
	return hops
}

// parseHostAddr reads "1.2.3.4", "1.2.3.4:80", "::1", "[::1]" or
// "[::1]:80" as an address; anything else is the zero Addr.
func parseHostAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i] // a zone is the local interface, not the caller
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
