// Package passhash owns the password-grade hashing of Latch: the one format
// new secrets that a person chose are stored in (user passwords, client
// secrets from config.yaml), and the check of every format Latch accepts.
//
// New hashes are argon2id in the PHC string format with the OWASP
// parameters (19 MiB, 2 passes, 1 lane). Verify also accepts bcrypt hashes
// ($2a$, $2b$, $2y$), so hashes imported from other systems keep working.
// The algorithm and its parameters are recorded in every hash string, so
// they can change later: NeedsRehash tells which stored hashes are not in
// the current format, and callers re-hash them when they next see the
// clear secret.
//
// Hashes are read from config files and databases, so Verify treats them
// as untrusted input: any malformed hash, or one whose parameters would
// make a check absurdly slow or large, is a mismatch, never a panic.
package passhash

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrMismatch is the only error of Verify: the secret does not match, or
// the hash is not one Verify can check.
var ErrMismatch = errors.New("passhash: mismatch")

// The parameters of Hash: the OWASP recommendation for argon2id.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Limits on the hashes Verify accepts. They keep a hostile or mistyped hash
// from costing gigabytes or minutes per check; real hashes are far inside.
const (
	maxArgonMemory = 1 << 20 // KiB: 1 GiB
	maxArgonTime   = 16
	minSaltLen     = 8 // RFC 9106 §3.1
	maxSaltLen     = 128
	minKeyLen      = 16 // shorter tags make random guesses plausible
	maxKeyLen      = 128
	// bcrypt cost 16 is already several seconds per check; 31 would be days.
	maxBcryptCost = 16
)

const prefixArgon2id = "$argon2id$"

// Hash hashes secret with argon2id and a fresh 16-byte random salt, and
// returns the PHC string
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>" (unpadded standard base64).
func Hash(secret string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passhash: salt: %w", err)
	}
	key := argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return encode(argonParams{version: argon2.Version, memory: argonMemory, time: argonTime, threads: argonThreads}, salt, key), nil
}

// Verify returns nil if secret is the secret of hash, and ErrMismatch
// otherwise, including for an empty or malformed hash. The final comparison
// is constant-time.
//
// bcrypt compares only the first 72 bytes of a secret, as every bcrypt
// implementation does; NeedsRehash reports bcrypt hashes so they can be
// replaced by argon2id.
func Verify(hash, secret string) error {
	switch {
	case strings.HasPrefix(hash, prefixArgon2id):
		p, salt, want, ok := decodeArgon2id(hash)
		if !ok {
			return ErrMismatch
		}
		got := argon2.IDKey([]byte(secret), salt, p.time, p.memory, p.threads, uint32(len(want)))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return ErrMismatch
		}
		return nil
	case isBcrypt(hash):
		if !bcryptOK(hash) {
			return ErrMismatch
		}
		// CompareHashAndPassword compares in constant time.
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(secret)) != nil {
			return ErrMismatch
		}
		return nil
	default:
		return ErrMismatch
	}
}

// IsHash reports whether s is a hash Verify can check: a well-formed
// argon2id PHC string or bcrypt hash within Verify's limits. Configuration
// validation uses it to refuse a password_hash that could never match.
func IsHash(s string) bool {
	switch {
	case strings.HasPrefix(s, prefixArgon2id):
		_, _, _, ok := decodeArgon2id(s)
		return ok
	case isBcrypt(s):
		return bcryptOK(s)
	default:
		return false
	}
}

// NeedsRehash reports whether hash is in another format than Hash produces
// today: any bcrypt hash, any argon2id hash with other parameters, salt or
// key length, and anything that is not a hash at all. A caller that has just
// verified the clear secret against such a hash should store Hash(secret).
func NeedsRehash(hash string) bool {
	if !strings.HasPrefix(hash, prefixArgon2id) {
		return true
	}
	p, salt, key, ok := decodeArgon2id(hash)
	if !ok {
		return true
	}
	return p != argonParams{version: argon2.Version, memory: argonMemory, time: argonTime, threads: argonThreads} ||
		len(salt) != argonSaltLen || len(key) != argonKeyLen
}

type argonParams struct {
	version int
	memory  uint32
	time    uint32
	threads uint8
}

func encode(p argonParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", p.version, p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// decodeArgon2id parses "$argon2id$v=19$m=M,t=T,p=P$salt$key" strictly:
// exactly these fields in this order, decimal numbers, unpadded base64, and
// every value within the limits above (so argon2.IDKey cannot panic).
func decodeArgon2id(s string) (p argonParams, salt, key []byte, ok bool) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, false
	}
	v, ok := field(parts[2], "v=", 8)
	if !ok || v != argon2.Version {
		return p, nil, nil, false
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, nil, nil, false
	}
	m, ok1 := field(params[0], "m=", 32)
	t, ok2 := field(params[1], "t=", 32)
	th, ok3 := field(params[2], "p=", 8)
	if !ok1 || !ok2 || !ok3 || m == 0 || m > maxArgonMemory || t == 0 || t > maxArgonTime || th == 0 {
		return p, nil, nil, false
	}
	// The decoder skips line breaks; a canonical hash has none.
	if strings.ContainsAny(parts[4]+parts[5], "\r\n") {
		return p, nil, nil, false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen ||
		len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, false
	}
	return argonParams{version: int(v), memory: uint32(m), time: uint32(t), threads: uint8(th)}, salt, key, true
}

// field parses "name=<decimal>" into an unsigned number of the given size.
func field(s, name string, bits int) (uint64, bool) {
	num, found := strings.CutPrefix(s, name)
	if !found || num == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, bits)
	return n, err == nil
}

func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// bcryptOK reports whether s is "$2?$NN$" followed by 53 characters of
// bcrypt's base64 alphabet (22 of salt, 31 of hash), with a cost NN from
// bcrypt.MinCost to maxBcryptCost.
func bcryptOK(s string) bool {
	if len(s) != 60 || s[6] != '$' || !isDigit(s[4]) || !isDigit(s[5]) {
		return false
	}
	if cost := int(s[4]-'0')*10 + int(s[5]-'0'); cost < bcrypt.MinCost || cost > maxBcryptCost {
		return false
	}
	for i := 7; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || isDigit(c)) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// The length rule of NIST SP 800-63B §5.1.1.2 for passwords a person
// chooses: at least 8 characters, and at least 64 allowed. The upper bound
// is far above 64 so that pass phrases and password managers fit; it only
// keeps a request from making us hash megabytes.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 1024
)

// CheckPassword applies that rule to a new password, counting characters
// (Unicode code points), as the guideline does, not bytes. Every path that
// sets a password (config.yaml, the CLI, the admin API) calls it and puts
// the key it came from in front of the message.
func CheckPassword(password string) error {
	switch n := utf8.RuneCountInString(password); {
	case n < MinPasswordLength:
		return fmt.Errorf("must be at least %d characters (NIST SP 800-63B), got %d", MinPasswordLength, n)
	case n > MaxPasswordLength:
		return fmt.Errorf("must be at most %d characters, got %d", MaxPasswordLength, n)
	}
	return nil
}
