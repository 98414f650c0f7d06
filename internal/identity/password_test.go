package identity

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
)

// Password hashing runs in a bounded number of slots (each holds 19 MiB):
// with every slot taken, a check waits, and answers 503 (EUNAVAILABLE,
// wrapping the context's error) when its context ends first; once a slot
// is free it proceeds.
func TestPasswordHashingWaitsForASlot(t *testing.T) {
	ctx := context.Background()
	const pw = "correct horse battery staple"
	hash, err := HashPassword(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	for range cap(hashSlots) {
		hashSlots <- struct{}{}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	ok, err := CheckPassword(short, hash, pw)
	if ok || hospital.ErrorCode(err) != hospital.EUNAVAILABLE || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with every slot taken: %v, %v", ok, err)
	}
	if _, err := HashPassword(short, pw); hospital.ErrorCode(err) != hospital.EUNAVAILABLE {
		t.Fatalf("hashing with every slot taken: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		ok, err := CheckPassword(ctx, hash, pw)
		if err == nil && !ok {
			err = errors.New("the right password does not match")
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("checked without a slot: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	<-hashSlots // one slot free
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range cap(hashSlots) - 1 {
		<-hashSlots
	}
	if ok, err := CheckPassword(ctx, hash, "wrong horse battery staple"); ok || err != nil {
		t.Errorf("a wrong password: %v, %v", ok, err)
	}

	// A check leaves its slot resting (twice as long as it hashed), so
	// sign-ins take at most a third of a core; a new password's hash frees
	// its slot at once.
	idle := func() bool {
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if len(hashSlots) == 0 {
				return true
			}
		}
		return false
	}
	if !idle() {
		t.Fatal("the slots never came free")
	}
	if _, err := HashPassword(ctx, pw); err != nil || len(hashSlots) != 0 {
		t.Errorf("a new password's hash: %v, %d slots taken after it", err, len(hashSlots))
	}
	start := time.Now()
	if _, err := CheckPassword(ctx, hash, pw); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); len(hashSlots) != 1 {
		t.Errorf("after a check that took %v, %d slots taken; want its own, resting", took, len(hashSlots))
	}
	if !idle() {
		t.Error("the resting slot never came free")
	}
}
