package hospital

import "unicode/utf8"

// Truncate cuts s to at most n bytes without splitting a UTF-8 character
// (PostgreSQL refuses the half character a byte cut can leave).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
