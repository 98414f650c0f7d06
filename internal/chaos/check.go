package chaos

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// Check compares a load run with the database (dbURL: PostgreSQL directly,
// as the schema owner) and returns every violation of "each acknowledged
// command is in the database exactly once, with the answer the client got":
//
//   - each acknowledged registration is exactly one patient, the one whose
//     id the client was given; an unacknowledged one is at most one;
//   - each acknowledged admission is the patient's only admission, with
//     the acknowledged id;
//   - each acknowledged discharge left its admission discharged, with
//     exactly one discharge in its history;
//   - each bed was cleaned (audit rows "bed.clean") exactly as many times
//     as cleanings were acknowledged, and none was abandoned.
//
// Abandoned commands are violations too: the system must recover so that
// every retried command ends acknowledged.
func Check(ctx context.Context, dbURL string, rec *Record) ([]string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	rec.mu.Lock()
	acks := append([]Ack(nil), rec.Acks...)
	tokens := append([]string(nil), rec.Tokens...)
	abandoned := append([]string(nil), rec.Abandoned...)
	rec.mu.Unlock()

	// Registrations, by the unique given names of each.
	rows, err := conn.Query(ctx, "SELECT given_names, id::text FROM patients WHERE family_name = 'Chaos' AND given_names = ANY($1)", tokens)
	if err != nil {
		return nil, err
	}
	byToken := map[string][]string{}
	for rows.Next() {
		var token, id string
		if err := rows.Scan(&token, &id); err != nil {
			return nil, err
		}
		byToken[token] = append(byToken[token], id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	acked := map[string]bool{}
	for _, a := range acks {
		if a.Op != OpRegister {
			continue
		}
		acked[a.Token] = true
		if ids := byToken[a.Token]; len(ids) != 1 || ids[0] != a.ID {
			bad("registration %q acknowledged as patient %s: the database holds %v", a.Token, a.ID, ids)
		}
	}
	for _, t := range tokens {
		if ids := byToken[t]; !acked[t] && len(ids) > 1 {
			bad("unacknowledged registration %q created %d patients", t, len(ids))
		}
	}

	cleaned := map[string]int{}
	for _, a := range acks {
		switch a.Op {
		case OpAdmit:
			var ids []string
			if err := conn.QueryRow(ctx, "SELECT coalesce(array_agg(id::text), '{}') FROM admissions WHERE patient_id = $1", a.Ref).Scan(&ids); err != nil {
				return nil, err
			}
			if len(ids) != 1 || ids[0] != a.ID {
				bad("admission of patient %s acknowledged as %s: the database holds %v", a.Ref, a.ID, ids)
			}
		case OpDischarge:
			var status string
			var discharges int
			err := conn.QueryRow(ctx, `SELECT status, (SELECT count(*) FROM admission_events e WHERE e.admission_id = a.id AND e.event = 'discharged')
				FROM admissions a WHERE id = $1`, a.ID).Scan(&status, &discharges)
			if err != nil {
				bad("discharge of %s acknowledged: %v", a.ID, err)
			} else if status != "discharged" || discharges != 1 {
				bad("discharge of %s acknowledged: status %s with %d discharges in its history", a.ID, status, discharges)
			}
		case OpClean:
			cleaned[a.Ref]++
		}
	}
	beds := make([]string, 0, len(cleaned))
	for b := range cleaned {
		beds = append(beds, b)
	}
	sort.Strings(beds)
	for _, b := range beds {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE action = 'bed.clean' AND resource_id = $1", b).Scan(&n); err != nil {
			return nil, err
		}
		if n != cleaned[b] {
			bad("bed %s: %d cleanings acknowledged, %d done", b, cleaned[b], n)
		}
	}
	// Last, as they follow from the above when idempotency is broken.
	for _, a := range abandoned {
		bad("abandoned: %s", a)
	}
	return problems, nil
}
