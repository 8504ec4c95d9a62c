package server

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzUserCode feeds normalizeUserCode what a person might type: it must
// never panic; a code it accepts is exactly userCodeLength characters of
// userCodeAlphabet; and normalizing its output again changes nothing.
func FuzzUserCode(f *testing.F) {
	for _, s := range []string{"", "BCDF-GHJK\u00a0-", "BCDF-GHJK", "bcdf ghjk", " BCDFGHJK\t", "BCDF-GHJ", "AEIO-UAEI", "ǅǅǅǅ-ǅǅǅǅ", "ßßßß", "ﬀﬀﬀﬀ", "\xff\xfe", "B-C-D-F-G-H-J-K-L"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		code, ok := normalizeUserCode(typed)
		if ok {
			if len(code) != userCodeLength || utf8.RuneCountInString(code) != userCodeLength {
				t.Fatalf("accepted %q as %q: not %d characters", typed, code, userCodeLength)
			}
			for _, r := range code {
				if !strings.ContainsRune(userCodeAlphabet, r) {
					t.Fatalf("accepted %q as %q: %q is not in the alphabet", typed, code, r)
				}
			}
			_ = formatUserCode(code)
		}
		again, ok2 := normalizeUserCode(code)
		if ok2 != ok || again != code {
			t.Fatalf("not idempotent: %q -> %q (%v) -> %q (%v)", typed, code, ok, again, ok2)
		}
	})
}
