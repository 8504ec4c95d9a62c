package server

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}}}
	cases := []struct {
		name, remote string
		header       http.Header
		want         string
	}{
		{"direct caller", "203.0.113.7:5555", nil, "203.0.113.7"},
		{"untrusted peer's header is ignored", "203.0.113.7:5555",
			http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.7"},
		{"trusted proxy names the caller", "10.1.2.3:443",
			http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"a forged left-most hop is skipped", "10.1.2.3:443",
			http.Header{"X-Forwarded-For": {"1.1.1.1, 198.51.100.1, 10.9.9.9"}}, "198.51.100.1"},
		{"Forwarded wins over X-Forwarded-For", "10.1.2.3:443",
			http.Header{"Forwarded": {`for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711"`}, "X-Forwarded-For": {"1.1.1.1"}}, "2001:db8:cafe::/64"},
		{"unknown hop stops the walk", "10.1.2.3:443",
			http.Header{"Forwarded": {"for=unknown"}}, "10.1.2.3"},
		{"IPv6 grouped by /64", "[2001:db8:1:2:aaaa::1]:80", nil, "2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6 is IPv4", "[::ffff:192.0.2.1]:80", nil, "192.0.2.1"},
		{"garbage", "not-an-address", nil, "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: c.remote, Header: c.header}
			if r.Header == nil {
				r.Header = http.Header{}
			}
			if got := s.clientKey(r); got != c.want {
				t.Fatalf("clientKey = %q, want %q", got, c.want)
			}
		})
	}
}
