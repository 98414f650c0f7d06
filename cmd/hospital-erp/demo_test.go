package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/demo"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/queue"
)

// The demo's waiting rooms arrived one after another in ticket order, so
// "call next" calls 001, 002, ... in every department.
func TestDemoQueuesCallInTicketOrder(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	// A Wednesday morning: today has a waiting room (weekends have none).
	now := time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)
	logins, err := demo.Load(ctx, tb.DB, tb.Identity, 60, time.UTC, now)
	if err != nil {
		t.Fatal(err)
	}
	var desk *client.Client
	for _, l := range logins {
		if l.Role == identity.RoleReceptionist {
			sensitive(l.Password)
			tok, err := client.New(tb.URL, nil).Login(ctx, l.Username, l.Password)
			if err != nil {
				t.Fatal(err)
			}
			desk = client.New(tb.URL, nil).WithToken(tok.AccessToken)
		}
	}
	if desk == nil {
		t.Fatal("no receptionist among the demo logins")
	}
	clinics, err := desk.Clinics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	depts := map[string]bool{}
	for _, c := range clinics {
		depts[c.DepartmentID] = true
	}
	total := 0
	for dept := range depts {
		board, err := desk.QueueBoard(ctx, dept)
		if err != nil {
			t.Fatal(err)
		}
		var waiting []queue.Entry
		for _, e := range board.Entries {
			if e.Status == "waiting" {
				waiting = append(waiting, e)
			}
		}
		slices.SortFunc(waiting, func(a, b queue.Entry) int { return a.CheckedInAt.Compare(b.CheckedInAt) })
		for i, e := range waiting {
			if i > 0 && !e.CheckedInAt.After(waiting[i-1].CheckedInAt) {
				t.Errorf("tickets %s and %s checked in at the same time %s", waiting[i-1].Ticket, e.Ticket, e.CheckedInAt)
			}
			if e.CheckedInAt.After(now) {
				t.Errorf("ticket %s checked in at %s, after the demo's now %s", e.Ticket, e.CheckedInAt, now)
			}
		}
		for _, want := range waiting {
			called, err := desk.QueueCallNext(ctx, dept, "Room 1")
			if err != nil {
				t.Fatal(err)
			}
			if called.Ticket != want.Ticket {
				t.Fatalf("call next called ticket %s, want %s (the earliest arrival)", called.Ticket, want.Ticket)
			}
		}
		if n := len(waiting); n > 0 && waiting[0].Ticket != "001" {
			t.Errorf("first arrival has ticket %s, want 001", waiting[0].Ticket)
		}
		total += len(waiting)
	}
	if total < 3 {
		t.Fatalf("%d patients waiting in the demo, want a waiting room", total)
	}
}
