package passhash_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchauth/latch/passhash"
)

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashRoundTrip(t *testing.T) {
	for _, secret := range []string{"correct horse battery staple", "", "ünïcödé 🔑", strings.Repeat("x", 1000)} {
		t.Run(fmt.Sprintf("len%d", len(secret)), func(t *testing.T) {
			h, err := passhash.Hash(secret)
			if err != nil {
				t.Fatal(err)
			}
			if !phc.MatchString(h) {
				t.Fatalf("hash %q is not the expected PHC string", h)
			}
			if err := passhash.Verify(h, secret); err != nil {
				t.Fatalf("Verify(right secret) = %v", err)
			}
			if err := passhash.Verify(h, secret+"x"); !errors.Is(err, passhash.ErrMismatch) {
				t.Fatalf("Verify(wrong secret) = %v, want ErrMismatch", err)
			}
			if !passhash.IsHash(h) {
				t.Error("IsHash(Hash()) = false")
			}
			if passhash.NeedsRehash(h) {
				t.Error("NeedsRehash(Hash()) = true")
			}
			if strings.Contains(h, secret) && secret != "" {
				t.Error("hash contains the secret")
			}
		})
	}
}

func TestHashIsSalted(t *testing.T) {
	a, err := passhash.Hash("same")
	if err != nil {
		t.Fatal(err)
	}
	b, err := passhash.Hash("same")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two hashes of one secret are equal: %s", a)
	}
	if strings.Split(a, "$")[4] == strings.Split(b, "$")[4] {
		t.Fatal("two hashes share a salt")
	}
}

// argonHash builds an argon2id PHC string independently of Hash, so the
// format is checked against argon2 itself.
func argonHash(secret string, m, t uint32, p uint8, salt []byte, keyLen uint32) string {
	key := argon2.IDKey([]byte(secret), salt, t, m, p, keyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestVerifyForeignHashes(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("hunter2"), 4)
	if err != nil {
		t.Fatal(err)
	}
	salt := []byte("0123456789abcdef")
	tests := []struct {
		name   string
		hash   string
		secret string
		want   error
	}{
		{"bcrypt 2a cost 4", string(bc), "hunter2", nil},
		{"bcrypt wrong", string(bc), "hunter3", passhash.ErrMismatch},
		{"bcrypt 2b", "$2b$" + string(bc)[4:], "hunter2", nil},
		{"bcrypt 2y", "$2y$" + string(bc)[4:], "hunter2", nil},
		{"argon2id other params", argonHash("pw", 8*1024, 3, 2, salt, 32), "pw", nil},
		{"argon2id other params wrong", argonHash("pw", 8*1024, 3, 2, salt, 32), "pW", passhash.ErrMismatch},
		{"argon2id 64-byte key, 8-byte salt", argonHash("pw", 64, 1, 1, salt[:8], 64), "pw", nil},
		{"argon2id current params", argonHash("pw", 19456, 2, 1, salt, 32), "pw", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := passhash.Verify(tt.hash, tt.secret); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if !passhash.IsHash(tt.hash) {
				t.Errorf("IsHash(%q) = false", tt.hash)
			}
		})
	}
}

// TestVerifyMalformed: no malformed hash panics, matches, or counts as a
// hash. Every case would be accepted by a careless parser.
func TestVerifyMalformed(t *testing.T) {
	const secret = "pw"
	good := argonHash(secret, 64, 1, 1, []byte("0123456789abcdef"), 32)
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=64,t=1,p=1, salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte(secret), 4)
	b := string(bc)
	sum := sha256.Sum256([]byte(secret))
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"plain text", secret},
		{"sha256 client format", "sha256$" + base64.RawURLEncoding.EncodeToString(sum[:])},
		{"prefix only", "$argon2id$"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"missing version", "$argon2id$m=64,t=1,p=1$" + parts[4] + "$" + parts[5]},
		{"version 16", with(2, "v=16")},
		{"version huge", with(2, "v=99999999999999999999")},
		{"version empty", with(2, "v=")},
		{"m=0", with(3, "m=0,t=1,p=1")},
		{"m too big", with(3, "m=1048577,t=1,p=1")},
		{"m overflow", with(3, "m=4294967296,t=1,p=1")},
		{"m negative", with(3, "m=-1,t=1,p=1")},
		{"t=0", with(3, "m=64,t=0,p=1")},
		{"t=17", with(3, "m=64,t=17,p=1")},
		{"p=0", with(3, "m=64,t=1,p=0")},
		{"p=256", with(3, "m=64,t=1,p=256")},
		{"params reordered", with(3, "t=1,m=64,p=1")},
		{"params missing", with(3, "m=64,t=1")},
		{"params extra", with(3, "m=64,t=1,p=1,keyid=x")},
		{"params with spaces", with(3, "m=64, t=1, p=1")},
		{"params plus sign", with(3, "m=+64,t=1,p=1")},
		{"bad salt base64", with(4, "!!!!")},
		{"padded salt", with(4, parts[4]+"==")},
		{"short salt", with(4, base64.RawStdEncoding.EncodeToString([]byte("1234567")))},
		{"empty salt", with(4, "")},
		{"bad key base64", with(5, "@@@@")},
		{"empty key", with(5, "")},
		{"short key", with(5, base64.RawStdEncoding.EncodeToString(make([]byte, 8)))},
		{"huge key", with(5, base64.RawStdEncoding.EncodeToString(make([]byte, 4096)))},
		{"extra field", good + "$x"},
		{"missing key", strings.Join(parts[:5], "$")},
		{"leading garbage", "x" + good},
		{"trailing newline", good + "\n"},
		{"newline in salt", with(4, parts[4][:4]+"\r\n"+parts[4][4:])},
		{"bcrypt truncated", b[:59]},
		{"bcrypt long", b + "x"},
		{"bcrypt bad cost", b[:4] + "xx" + b[6:]},
		{"bcrypt cost 3", b[:4] + "03" + b[6:]},
		{"bcrypt cost 31", b[:4] + "31" + b[6:]},
		{"bcrypt no dollar after cost", b[:6] + "x" + b[7:]},
		{"bcrypt bad alphabet", b[:30] + "!" + b[31:]},
		{"bcrypt 2x", "$2x$" + b[4:]},
		{"bcrypt 2", "$2$" + b[4:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			if err := passhash.Verify(tt.hash, secret); err != passhash.ErrMismatch {
				t.Errorf("Verify = %v, want exactly ErrMismatch", err)
			}
			if passhash.IsHash(tt.hash) {
				t.Error("IsHash = true")
			}
			if !passhash.NeedsRehash(tt.hash) {
				t.Error("NeedsRehash = false")
			}
		})
	}
	if err := passhash.Verify(good, secret); err != nil {
		t.Fatalf("the unmodified base hash must verify: %v", err)
	}
}

func TestNeedsRehash(t *testing.T) {
	current, err := passhash.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	bc12 := "$2a$12$" + string(bc)[7:]
	salt16 := []byte("0123456789abcdef")
	tests := []struct {
		name string
		hash string
		want bool
	}{
		{"current", current, false},
		{"same params built independently", argonHash("pw", 19456, 2, 1, salt16, 32), false},
		{"bcrypt cost 4", string(bc), true},
		{"bcrypt cost 12", bc12, true},
		{"argon2id lower memory", argonHash("pw", 8192, 2, 1, salt16, 32), true},
		{"argon2id higher memory", argonHash("pw", 65536, 2, 1, salt16, 32), true},
		{"argon2id other time", argonHash("pw", 19456, 3, 1, salt16, 32), true},
		{"argon2id other threads", argonHash("pw", 19456, 2, 2, salt16, 32), true},
		{"argon2id other key length", argonHash("pw", 19456, 2, 1, salt16, 64), true},
		{"argon2id other salt length", argonHash("pw", 19456, 2, 1, salt16[:8], 32), true},
		{"not a hash", "pw", true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := passhash.NeedsRehash(tt.hash); got != tt.want {
				t.Fatalf("NeedsRehash(%q) = %v, want %v", tt.hash, got, tt.want)
			}
		})
	}
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := passhash.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h, err := passhash.Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := passhash.Verify(h, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyBcrypt10(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := passhash.Verify(string(h), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckPasswordFollowsNISTLengthRule(t *testing.T) {
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{
		{"one character", "a", false},
		{"seven characters", "1234567", false},
		{"eight characters", "12345678", true},
		{"eight characters of more than one byte each", "пароль12", true},
		{"64 characters", strings.Repeat("x", 64), true},
		{"over the cap", strings.Repeat("x", passhash.MaxPasswordLength+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := passhash.CheckPassword(tc.password); (err == nil) != tc.ok {
				t.Errorf("CheckPassword = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
