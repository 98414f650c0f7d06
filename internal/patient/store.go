package patient

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

func fromRow(r dbgen.Patient) Patient {
	p := Patient{ID: r.ID.String(), MRN: r.Mrn, FamilyName: r.FamilyName, GivenNames: r.GivenNames, NamePrefix: r.NamePrefix,
		NameSuffix: r.NameSuffix, PreferredName: r.PreferredName, Sex: r.Sex, GenderIdentity: r.GenderIdentity,
		BirthSex: r.BirthSex, Phone: r.Phone, MobilePhone: r.MobilePhone, Email: r.Email, AddressLine: r.AddressLine,
		AddressLine2: r.AddressLine2, City: r.City, District: r.District, PostalCode: r.PostalCode, Country: r.Country,
		Language: r.Language, Deceased: r.Deceased, DeceasedAt: r.DeceasedAt, Active: r.Active, Version: int(r.Version),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Identifiers: []Identifier{}, Contacts: []Contact{}}
	if r.BirthDate != nil {
		p.BirthDate = r.BirthDate.Format("2006-01-02")
	}
	if r.MergedInto != nil {
		p.MergedInto = r.MergedInto.String()
	}
	return p
}

func storeCreate(ctx context.Context, q *dbgen.Queries, in Demographics, birth *time.Time, by *uuid.UUID) (Patient, error) {
	row, err := q.PatientCreate(ctx, dbgen.PatientCreateParams{FamilyName: in.FamilyName, GivenNames: in.GivenNames,
		NamePrefix: in.NamePrefix, NameSuffix: in.NameSuffix, PreferredName: in.PreferredName, BirthDate: birth, Sex: in.Sex,
		GenderIdentity: in.GenderIdentity, BirthSex: in.BirthSex, Phone: in.Phone, MobilePhone: in.MobilePhone,
		Email: in.Email, AddressLine: in.AddressLine, AddressLine2: in.AddressLine2, City: in.City, District: in.District,
		PostalCode: in.PostalCode, Country: in.Country, Language: in.Language, CreatedBy: by})
	if err != nil {
		return Patient{}, postgres.Translate(err)
	}
	return fromRow(row), nil
}

// storeGet returns the patient with identifiers and contacts.
func storeGet(ctx context.Context, q *dbgen.Queries, id uuid.UUID) (Patient, error) {
	row, err := q.PatientGet(ctx, id)
	if err != nil {
		return Patient{}, postgres.Translate(err)
	}
	p := fromRow(row)
	ids, err := q.IdentifierList(ctx, id)
	if err != nil {
		return Patient{}, postgres.Translate(err)
	}
	for _, i := range ids {
		p.Identifiers = append(p.Identifiers, Identifier{ID: i.ID.String(), Type: i.Type, System: i.System, Value: i.Value})
	}
	cs, err := q.ContactList(ctx, id)
	if err != nil {
		return Patient{}, postgres.Translate(err)
	}
	for _, c := range cs {
		p.Contacts = append(p.Contacts, Contact{ID: c.ID.String(), Relationship: c.Relationship, Name: c.Name,
			Phone: c.Phone, Email: c.Email, Address: c.Address})
	}
	return p, nil
}

func storeAddIdentifier(ctx context.Context, q *dbgen.Queries, patient uuid.UUID, i Identifier) (Identifier, error) {
	row, err := q.IdentifierAdd(ctx, dbgen.IdentifierAddParams{PatientID: patient, Type: i.Type, System: i.System, Value: i.Value})
	if err != nil {
		if err = postgres.Translate(err); hospital.ErrorCode(err) == hospital.ECONFLICT {
			return Identifier{}, &hospital.Error{Code: hospital.ECONFLICT, Err: err,
				Message: "Another patient already has this identifier; check for a duplicate record.",
				Fields:  map[string]string{"value": "belongs to another patient"}}
		}
		return Identifier{}, err
	}
	return Identifier{ID: row.ID.String(), Type: row.Type, System: row.System, Value: row.Value}, nil
}

func storeAddContact(ctx context.Context, q *dbgen.Queries, patient uuid.UUID, c Contact) (Contact, error) {
	row, err := q.ContactAdd(ctx, dbgen.ContactAddParams{PatientID: patient, Relationship: c.Relationship, Name: c.Name,
		Phone: c.Phone, Email: c.Email, Address: c.Address})
	if err != nil {
		return Contact{}, postgres.Translate(err)
	}
	return Contact{ID: row.ID.String(), Relationship: row.Relationship, Name: row.Name, Phone: row.Phone,
		Email: row.Email, Address: row.Address}, nil
}

// storeUpdate writes in over version; it returns EPRECONDITION when the
// record changed since the client read it, ENOTFOUND when it is gone.
func storeUpdate(ctx context.Context, q *dbgen.Queries, id uuid.UUID, version int, in UpdateInput, birth, deceasedAt *time.Time) (Patient, error) {
	_, err := q.PatientUpdate(ctx, dbgen.PatientUpdateParams{ID: id, Version: int32(version), FamilyName: in.FamilyName,
		GivenNames: in.GivenNames, NamePrefix: in.NamePrefix, NameSuffix: in.NameSuffix, PreferredName: in.PreferredName,
		BirthDate: birth, Sex: in.Sex, GenderIdentity: in.GenderIdentity, BirthSex: in.BirthSex, Phone: in.Phone,
		MobilePhone: in.MobilePhone, Email: in.Email, AddressLine: in.AddressLine, AddressLine2: in.AddressLine2,
		City: in.City, District: in.District, PostalCode: in.PostalCode, Country: in.Country, Language: in.Language,
		Deceased: in.Deceased, DeceasedAt: deceasedAt})
	if err == nil {
		return storeGet(ctx, q, id)
	}
	if err = postgres.Translate(err); hospital.ErrorCode(err) != hospital.ENOTFOUND {
		return Patient{}, err
	}
	cur, err := q.PatientGet(ctx, id)
	if err != nil {
		return Patient{}, postgres.Translate(err)
	}
	if !cur.Active {
		return Patient{}, hospital.Errorf(hospital.ECONFLICT, "This record was merged into another; update the surviving record.")
	}
	return Patient{}, hospital.Errorf(hospital.EPRECONDITION,
		"This patient was changed by someone else since you opened it; reload and apply your change again.")
}

// cursor is the sort key of the last row of a page.
type cursor struct {
	Family  string    `json:"f,omitempty"`
	Given   string    `json:"g,omitempty"`
	Created time.Time `json:"c,omitzero"`
	MRN     string    `json:"m,omitempty"`
	Score   float64   `json:"s,omitempty"`
	ID      uuid.UUID `json:"i"`
	// Mode says which stage of a several-word search the pages come from:
	// "parts" (exact name prefixes), "near" (one word mistyped) or ""
	// (trigram similarity over all names).
	Mode string `json:"o,omitempty"`
}

// storeList runs the keyset query of the requested sort; one query per
// sort key, so the sort parameter never becomes SQL.
func storeList(ctx context.Context, q *dbgen.Queries, f ListFilter, scope access.Scope, page httpx.PageRequest) ([]Patient, string, error) {
	var after *cursor
	if page.Cursor != "" {
		after = &cursor{}
		if err := httpx.DecodeCursor(page.Cursor, after); err != nil {
			return nil, "", err
		}
	}
	lim := int32(page.Limit + 1)
	wards := scope.Wards
	if wards == nil {
		wards = []uuid.UUID{}
	}
	like, similar := nameMatch(f.Query)
	if similar != nil && page.Sort != "relevance" {
		if err := q.SearchThreshold(ctx, similarityThreshold); err != nil {
			return nil, "", postgres.Translate(err)
		}
	}
	mode := ""
	var rows []dbgen.Patient
	var scores []float64
	var err error
	var keys [][2]string // surname search: the folded names it orders by
	switch page.Sort {
	case "relevance":
		if like != nil {
			// One word: surname prefix, in name order.
			p := dbgen.PatientSearchBySurnameParams{QLike: *like, BirthDate: f.BirthDate, Mrn: f.MRN, Phone: f.Phone,
				Identifier: f.Identifier, ScopeUser: scope.User, ScopeWards: wards, ScopeDepartment: scope.Department, Lim: lim}
			if after != nil {
				p.AfterFamily, p.AfterGiven, p.AfterID = &after.Family, &after.Given, &after.ID
			}
			var rs []dbgen.PatientSearchBySurnameRow
			rs, err = q.PatientSearchBySurname(ctx, p)
			for _, r := range rs {
				rows = append(rows, r.Patient)
				keys = append(keys, [2]string{r.FamilyKey, r.GivenKey})
			}
			break
		}
		// Several words: first the exact-prefix name parts, then, when that
		// finds nothing, one mistyped word, then trigram similarity.
		families, givens := NameSplits(strings.Fields(*similar))
		if after == nil || after.Mode == "parts" {
			p := dbgen.PatientSearchByNamePartsParams{FamilyParts: families, GivenParts: givens, BirthDate: f.BirthDate,
				Mrn: f.MRN, Phone: f.Phone, Identifier: f.Identifier, ScopeUser: scope.User, ScopeWards: wards,
				ScopeDepartment: scope.Department, Lim: lim}
			if after != nil {
				p.AfterFamily, p.AfterGiven, p.AfterID = &after.Family, &after.Given, &after.ID
			}
			var rs []dbgen.PatientSearchByNamePartsRow
			if rs, err = q.PatientSearchByNameParts(ctx, p); err != nil {
				break
			}
			for _, r := range rs {
				rows = append(rows, r.Patient)
				keys = append(keys, [2]string{r.FamilyKey, r.GivenKey})
			}
			if len(rows) > 0 || after != nil {
				mode = "parts"
				break
			}
		}
		if after == nil || after.Mode == "near" {
			p := dbgen.PatientSearchByNearNameParams{Q: *similar, FamilyParts: families, GivenParts: givens,
				BirthDate: f.BirthDate, Mrn: f.MRN, Phone: f.Phone, Identifier: f.Identifier, ScopeUser: scope.User,
				ScopeWards: wards, ScopeDepartment: scope.Department, Lim: lim}
			if after != nil {
				p.AfterScore, p.AfterFamily, p.AfterGiven, p.AfterID = &after.Score, &after.Family, &after.Given, &after.ID
			}
			var rs []dbgen.PatientSearchByNearNameRow
			if rs, err = q.PatientSearchByNearName(ctx, p); err != nil {
				break
			}
			for _, r := range rs {
				rows = append(rows, r.Patient)
				scores = append(scores, r.Score)
				keys = append(keys, [2]string{r.FamilyKey, r.GivenKey})
			}
			if len(rows) > 0 || after != nil {
				mode = "near"
				break
			}
		}
		if err = q.SearchThreshold(ctx, similarityThreshold); err != nil {
			break
		}
		p := dbgen.PatientSearchByRelevanceParams{Q: *similar, BirthDate: f.BirthDate, Mrn: f.MRN, Phone: f.Phone,
			Identifier: f.Identifier, ScopeUser: scope.User, ScopeWards: wards, ScopeDepartment: scope.Department, Lim: lim}
		if after != nil {
			p.AfterScore, p.AfterID = &after.Score, &after.ID
		}
		var rs []dbgen.PatientSearchByRelevanceRow
		rs, err = q.PatientSearchByRelevance(ctx, p)
		for _, r := range rs {
			rows = append(rows, r.Patient)
			scores = append(scores, r.Score)
		}
	case "name", "-name":
		p := dbgen.PatientListByNameParams{QLike: like, QSimilar: similar, BirthDate: f.BirthDate, Mrn: f.MRN, Phone: f.Phone, Identifier: f.Identifier,
			ScopeUser: scope.User, ScopeWards: wards, ScopeDepartment: scope.Department, Lim: lim}
		if after != nil {
			p.AfterFamily, p.AfterGiven, p.AfterID = &after.Family, &after.Given, &after.ID
		}
		var rs []dbgen.PatientListByNameRow
		if page.Sort == "name" {
			rs, err = q.PatientListByName(ctx, p)
		} else {
			var desc []dbgen.PatientListByNameDescRow
			desc, err = q.PatientListByNameDesc(ctx, dbgen.PatientListByNameDescParams(p))
			for _, r := range desc {
				rs = append(rs, dbgen.PatientListByNameRow(r))
			}
		}
		for _, r := range rs {
			rows = append(rows, r.Patient)
			keys = append(keys, [2]string{r.FamilyKey, r.GivenKey})
		}
	case "created", "-created":
		p := dbgen.PatientListByCreatedParams{QLike: like, QSimilar: similar, BirthDate: f.BirthDate, Mrn: f.MRN, Phone: f.Phone, Identifier: f.Identifier,
			ScopeUser: scope.User, ScopeWards: wards, ScopeDepartment: scope.Department, Lim: lim}
		if after != nil {
			p.AfterCreated, p.AfterID = &after.Created, &after.ID
		}
		if page.Sort == "created" {
			rows, err = q.PatientListByCreated(ctx, p)
		} else {
			rows, err = q.PatientListByCreatedDesc(ctx, dbgen.PatientListByCreatedDescParams(p))
		}
	case "mrn", "-mrn":
		p := dbgen.PatientListByMRNParams{QLike: like, QSimilar: similar, BirthDate: f.BirthDate, Mrn: f.MRN, Phone: f.Phone, Identifier: f.Identifier,
			ScopeUser: scope.User, ScopeWards: wards, ScopeDepartment: scope.Department, Lim: lim}
		if after != nil {
			p.AfterMrn = &after.MRN
		}
		if page.Sort == "mrn" {
			rows, err = q.PatientListByMRN(ctx, p)
		} else {
			rows, err = q.PatientListByMRNDesc(ctx, dbgen.PatientListByMRNDescParams(p))
		}
	}
	if err != nil {
		return nil, "", postgres.Translate(err)
	}
	next := ""
	if len(rows) > page.Limit {
		rows = rows[:page.Limit]
		last := rows[len(rows)-1]
		c := cursor{Family: last.FamilyName, Given: last.GivenNames, Created: last.CreatedAt, MRN: last.Mrn, ID: last.ID, Mode: mode}
		if keys != nil {
			// The name index orders by the unaccented, lower-cased names.
			c.Family, c.Given = keys[page.Limit-1][0], keys[page.Limit-1][1]
		}
		if scores != nil {
			c.Score = scores[page.Limit-1]
		}
		next = httpx.EncodeCursor(c)
	}
	out := make([]Patient, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, next, nil
}

// storeDuplicates scores the registered patients resembling in; threshold
// is the name similarity that makes a candidate by name alone (see
// PatientDuplicates): likelyNameSimilarity finds every likely duplicate,
// similarityThreshold lists weaker candidates too.
func storeDuplicates(ctx context.Context, q *dbgen.Queries, in RegisterInput, birth *time.Time, threshold string) ([]Duplicate, error) {
	values := []string{}
	for _, i := range in.Identifiers {
		values = append(values, i.Value)
	}
	if err := q.SearchThreshold(ctx, threshold); err != nil {
		return nil, postgres.Translate(err)
	}
	rows, err := q.PatientDuplicates(ctx, dbgen.PatientDuplicatesParams{Name: in.GivenNames + " " + in.FamilyName,
		BirthDate: birth, Phone: digits(in.Phone + " " + in.MobilePhone), Identifiers: values})
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := []Duplicate{}
	for _, r := range rows {
		out = append(out, Duplicate{Patient: fromRow(r.Patient), Score: round2(r.Score), NameSimilarity: round2(r.NameScore),
			SameBirthDate: r.SameBirth != nil && *r.SameBirth, SamePhone: r.SamePhone != nil && *r.SamePhone,
			SameIdentifier: r.SameIdentifier})
	}
	return out, nil
}

func mergeFromRow(r dbgen.PatientMerge) Merge {
	m := Merge{ID: r.ID.String(), SurvivorID: r.SurvivorID.String(), MergedID: r.MergedID.String(), MergedAt: r.MergedAt,
		UndoneAt: r.UndoneAt, Moved: map[string]int{}}
	var moved map[string][]string
	if json.Unmarshal(r.Moved, &moved) == nil {
		for k, ids := range moved {
			m.Moved[k] = len(ids)
		}
	}
	return m
}

// digits keeps the digits (and the spaces between groups) of a phone number.
func digits(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r >= '0' && r <= '9' {
			out = append(out, r)
		}
	}
	return string(out)
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

// similarityThreshold is the trigram similarity a several-word name query
// needs: it lets "Jsoe Muller" find "José Müller" (0.5) while most other
// Müllers (about 0.44) stay out, which keeps searches fast on a large
// registry (docs/BENCHMARKS.md).
const similarityThreshold = "0.45"

// likelyNameSimilarity is the least name similarity of a likely duplicate
// (DuplicateThreshold) without the same birth date or identifier: 0.5 of it
// plus 0.15 for the same phone makes 0.6.
const likelyNameSimilarity = "0.9"

// nameMatch chooses how a name query matches: one word as a literal
// prefix of the family name (an escaped LIKE pattern), several words by
// trigram similarity on the whole name.
func nameMatch(query *string) (like, similar *string) {
	if query == nil {
		return nil, nil
	}
	words := strings.Fields(*query)
	switch len(words) {
	case 0:
		return nil, nil
	case 1:
		p := escapeLike(words[0]) + "%"
		return &p, nil
	}
	q := strings.Join(words, " ")
	return nil, &q
}

// NameSplits cuts a several-word query in two at every word boundary,
// each half once as the family name and once as the given names:
// "naomi van der berg" gives (family "van der berg", given "naomi"),
// (family "naomi", given "van der berg"), (family "naomi van", given "der
// berg") and so on; first, the whole query as a family name of several
// words with any given names ("van der berg"). families[i] goes with
// givens[i]. Only the first eight words count (a name is not longer; the
// splits stay few).
func NameSplits(words []string) (families, givens []string) {
	words = words[:min(len(words), 8)]
	families, givens = []string{strings.Join(words, " ")}, []string{""}
	for k := 1; k < len(words); k++ {
		head, tail := strings.Join(words[:k], " "), strings.Join(words[k:], " ")
		families = append(families, tail, head)
		givens = append(givens, head, tail)
	}
	return families, givens
}

// escapeLike makes s match literally in a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
