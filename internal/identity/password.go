package identity

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
)

// argon2id parameters: OWASP's recommendation (19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// Password length limits. Long passphrases are welcome; the upper bound
// only stops hashing megabytes.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// hashSlots bounds the argon2id computations under way in the process,
// one per core. Each holds argonMemory (19 MiB) until it ends: without a
// bound, a burst of sign-ins at 100 a second held 1 GB at once, past the
// pod's 1 GiB limit.
var hashSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// hashRest is how much longer than a hash took its slot then stays taken
// (idle): hashing uses at most a third of each core, about 10 sign-ins a
// second per core, and the other requests keep the rest. Left to hash
// back to back, a burst of sign-ins took the core from every other
// request: reads offered at 1,000 a second beside sign-ins at 100 got
// 277 (887 with the rest).
const hashRest = 2

// hashWait is the longest a password check waits for a slot. Beyond it
// the sign-in is refused at once (503, Retry-After) rather than left to
// queue: a sign-in that waited until its request's deadline would then
// hash for nothing, and under a burst nearly every one did (4 of the 100
// offered a second got through, against 20 a second the core can hash).
const hashWait = 2 * time.Second

// idKey computes argon2id in one of the hashSlots. A password check
// (check) waits for a slot at most hashWait and leaves it resting
// (hashRest); a new password's hash, an administrator's or a user's own
// rare action, waits as long as ctx allows and frees its slot at once.
func idKey(ctx context.Context, check bool, password, salt []byte, iter, memory uint32, threads uint8, keyLen uint32) ([]byte, error) {
	select {
	case hashSlots <- struct{}{}:
	default:
		var timeout <-chan time.Time
		if check {
			wait := time.NewTimer(hashWait)
			defer wait.Stop()
			timeout = wait.C
		}
		select {
		case hashSlots <- struct{}{}:
		case <-timeout:
			return nil, hashBusy(tooManySignIns, errHashWait)
		case <-ctx.Done():
			if !check {
				return nil, hashBusy(busyHashing, ctx.Err())
			}
			return nil, hashBusy(tooManySignIns, ctx.Err())
		}
	}
	start := time.Now()
	key := argon2.IDKey(password, salt, iter, memory, threads, keyLen)
	if !check {
		<-hashSlots
		return key, nil
	}
	time.AfterFunc(hashRest*time.Since(start), func() { <-hashSlots })
	return key, nil
}

// errHashWait: no hashing slot came free within hashWait.
var errHashWait = errors.New("no password hashing slot free in time")

// signIns bounds the sign-ins under way in the process: one beyond it is
// refused at once (503, Retry-After), before any database work. Under a
// burst beyond what the CPU can hash, sign-ins queued everywhere: the
// hashing took the core, every database round trip of every request waited
// for it, the connection pool ran dry, and the sign-ins that got their
// turn had reached their deadline (8 of the 100 offered a second got
// through, each after 13 s). A few at once keep the hashing fed and the
// rest of the API responsive.
var signIns = make(chan struct{}, 16*cap(hashSlots))

// errSignIns: signIns is full.
var errSignIns = errors.New("too many sign-ins under way")

// What a user is told when hashing is busy: at sign-in, and when a new
// password's hash waited until its request's deadline.
const (
	tooManySignIns = "Too many sign-ins at once; please try again in a moment."
	busyHashing    = "The server is busy checking passwords; please try again in a moment."
)

// hashBusy is the error of a password check or hash refused for want of a
// slot: 503 with Retry-After, or nothing when the client has gone (it
// wraps ctx's error then).
func hashBusy(message string, err error) error {
	return &hospital.Error{Code: hospital.EUNAVAILABLE, Message: message, RetryAfter: time.Second, Err: err}
}

// HashPassword returns a PHC-format argon2id hash with a random salt.
func HashPassword(ctx context.Context, password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := idKey(ctx, false, []byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the PHC hash, in
// constant time. Parameters are read from the hash, so they can be raised
// later without invalidating stored hashes. It fails with ctx's error when
// ctx ends while it waits for a hashing slot.
func CheckPassword(ctx context.Context, hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("unsupported password hash format")
	}
	var version int
	var mem, iter uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iter, &threads); err != nil {
		return false, errors.New("bad argon2 parameters")
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, err
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, err
	}
	got, err := idKey(ctx, true, []byte(password), salt, iter, mem, threads, uint32(len(want)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when the user does not exist, so a login
// for an unknown name takes as long as one for a known name.
var dummyHash, _ = HashPassword(context.Background(), "not-a-real-password-for-timing")

//go:embed common-passwords.txt
var commonPasswordsFile string

var commonWords = func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsFile))
	for sc.Scan() {
		w := strings.TrimSpace(sc.Text())
		if w != "" && !strings.HasPrefix(w, "#") {
			m[w] = true
		}
	}
	return m
}()

// PasswordProblem returns why password is not acceptable, or "". The
// policy follows NIST SP 800-63B: a length floor, no composition rules, and
// a check against commonly used passwords and the user's own names.
func PasswordProblem(password string, personal ...string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		return fmt.Sprintf("must be at least %d characters", MinPasswordLength)
	case n > MaxPasswordLength:
		return fmt.Sprintf("must be at most %d characters", MaxPasswordLength)
	}
	core := letters(password)
	if core == "" || isRepetition(core) || commonWords[core] || repeatsCommonWord(core) {
		return "is too common or too easy to guess; choose a longer phrase of unrelated words"
	}
	distinct := map[rune]bool{}
	for _, r := range strings.ToLower(password) {
		distinct[r] = true
	}
	if len(distinct) < 5 {
		return "uses too few different characters"
	}
	lower := strings.ToLower(password)
	for _, p := range personal {
		for _, part := range strings.FieldsFunc(strings.ToLower(p), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			if utf8.RuneCountInString(part) >= 4 && strings.Contains(lower, part) {
				return "must not contain your name or username"
			}
		}
	}
	return ""
}

// letters lower-cases s and keeps only its letters.
func letters(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isRepetition(s string) bool {
	for size := 1; size <= len(s)/2; size++ {
		if len(s)%size == 0 && strings.Repeat(s[:size], len(s)/size) == s {
			return true
		}
	}
	return false
}

func repeatsCommonWord(s string) bool {
	for size := 3; size <= len(s)/2; size++ {
		if len(s)%size == 0 && strings.Repeat(s[:size], len(s)/size) == s && commonWords[s[:size]] {
			return true
		}
	}
	return false
}
