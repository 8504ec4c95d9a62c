// Package federation holds the tests that sign in through an upstream
// identity provider with real parts only: two `latch serve` processes,
// each with its own SQLite file, the downstream one configured with the
// upstream as its OpenID Connect connector; a browser (an HTTP client
// with a cookie jar) through both login and consent pages; and the
// application's side done by golang.org/x/oauth2 and go-oidc.
//
// The package has no code of its own; everything is in its tests, which
// run with the others (`go test ./federation/`).
package federation
