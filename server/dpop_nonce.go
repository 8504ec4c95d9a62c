package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"time"

	"github.com/ory/fosite"
)

// Server nonces (RFC 9449 §8), with tokens.dpop_require_nonce. A nonce is
// the HMAC of the current time window under a key derived from the system
// secret: stateless, so every instance sharing the secret issues and
// accepts the same nonces, and nothing is stored for them. A nonce of the
// current or the previous window is accepted, so one lives between one and
// two windows; a fresh one is sent with every answer to a DPoP request.
const dpopNonceWindow = 5 * time.Minute

// dpopNonceAt is the nonce of the window holding t.
func (s *Server) dpopNonceAt(t time.Time) string {
	var window [8]byte
	binary.BigEndian.PutUint64(window[:], uint64(t.Unix()/int64(dpopNonceWindow/time.Second)))
	mac := hmac.New(sha256.New, derive(s.cfg.SystemSecret, "latch dpop nonce"))
	mac.Write(window[:])
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// dpopNonceCurrent reports whether nonce is this window's or the last's.
func (s *Server) dpopNonceCurrent(nonce string) bool {
	now := s.cfg.Now()
	ok := 0
	for _, want := range []string{s.dpopNonceAt(now), s.dpopNonceAt(now.Add(-dpopNonceWindow))} {
		ok |= subtle.ConstantTimeCompare([]byte(nonce), []byte(want))
	}
	return ok == 1
}

// offerDPoPNonce sends the current nonce with the answer to a request that
// carries a DPoP proof, when nonces are required.
func (s *Server) offerDPoPNonce(w http.ResponseWriter, r *http.Request) {
	if s.cfg.DPoPRequireNonce && r.Header.Get("DPoP") != "" {
		w.Header().Set("DPoP-Nonce", s.dpopNonceAt(s.cfg.Now()))
	}
}

// errUseDPoPNonce is §8's use_dpop_nonce: the proof lacks the server's
// current nonce, which the answer's DPoP-Nonce header carries.
func errUseDPoPNonce(hint string) *fosite.RFC6749Error {
	return dpopRFCError("use_dpop_nonce", "The DPoP proof must carry the server's nonce from the DPoP-Nonce header.", hint)
}
