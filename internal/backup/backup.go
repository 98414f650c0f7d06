// Package backup writes and restores a consistent logical backup of the
// application's database: every table's rows, read in one REPEATABLE READ
// snapshot, with a row count and a SHA-256 per table, in a gzip stream any
// machine can read without pg_dump (so no client/server version pairing).
//
// The stream, before gzip:
//
//	HOSPITAL-ERP-BACKUP 1\n
//	{header JSON}\n
//	TABLE {"name":...,"columns":[...]}\n
//	rows in COPY text format, ordered by primary key (one row per line)
//	\.\n
//	... every table ...
//	END {trailer JSON: per table rows and sha256}\n
//
// COPY's text format escapes backslashes and newlines, so no data line can
// be "\." and the format needs no length prefixes.
package backup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

const magic = "HOSPITAL-ERP-BACKUP 1"

// Header opens a backup.
type Header struct {
	Format        int       `json:"format"`
	SchemaVersion int64     `json:"schema_version"`
	AppVersion    string    `json:"app_version"`
	StartedAt     time.Time `json:"started_at"`
	Database      string    `json:"database"`
	Tables        []string  `json:"tables"`
}

// TableSum is what the backup recorded of one table.
type TableSum struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Rows    int64    `json:"rows"`
	SHA256  string   `json:"sha256"`
	Bytes   int64    `json:"bytes"`
}

// Manifest is the header and the trailer of a complete backup.
type Manifest struct {
	Header
	Tables []TableSum `json:"tables"`
	// Sequences holds each sequence's last value, read after the tables:
	// ids handed out to transactions that never committed stay used (the
	// audit chain relies on ids never being reused).
	Sequences  map[string]int64 `json:"sequences"`
	FinishedAt time.Time        `json:"finished_at"`
}

// trailer ends the stream.
type trailer struct {
	Tables     []TableSum       `json:"tables"`
	Sequences  map[string]int64 `json:"sequences"`
	FinishedAt time.Time        `json:"finished_at"`
}

// table is one table to copy: its non-generated columns and the order.
type table struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	orderBy []string
}

// tables lists the schema's tables (not the migration table, and a
// partitioned table once, not its partitions), in name order, with their
// columns and the order their rows are copied in.
func tables(ctx context.Context, tx pgx.Tx, skip string) ([]table, error) {
	rows, err := tx.Query(ctx, `
		SELECT c.relname,
		       array(SELECT a.attname FROM pg_attribute a
		              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		              ORDER BY a.attnum)::text[],
		       `+orderKey("c.oid")+`
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> $1
		ORDER BY c.relname`, skip)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []table
	for rows.Next() {
		var t table
		var pk []string
		if err := rows.Scan(&t.Name, &t.Columns, &pk); err != nil {
			return nil, err
		}
		t.orderBy = pk
		if len(pk) == 0 {
			t.orderBy = t.Columns
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (t table) selectSQL() string {
	return fmt.Sprintf("COPY (SELECT %s FROM %s ORDER BY %s) TO STDOUT", idents(t.Columns), pgx.Identifier{t.Name}.Sanitize(), idents(t.orderBy))
}

func idents(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// Options describe the backup being written.
type Options struct {
	SchemaVersion int64
	AppVersion    string
	Progress      func(table string, rows int64) // after each table; may be nil
}

// Write backs up every table of conn's database to w in one snapshot
// (REPEATABLE READ, READ ONLY: writers go on, the backup sees the moment
// it started). skip names a table left out (the migration table: restore
// recreates the schema from the migrations).
func Write(ctx context.Context, conn *pgx.Conn, w io.Writer, skip string, o Options) (Manifest, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Manifest{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	ts, err := tables(ctx, tx, skip)
	if err != nil {
		return Manifest{}, fmt.Errorf("list tables: %w", err)
	}
	m := Manifest{Header: Header{Format: 1, SchemaVersion: o.SchemaVersion, AppVersion: o.AppVersion,
		StartedAt: time.Now().UTC(), Database: conn.Config().Database}}
	for _, t := range ts {
		m.Header.Tables = append(m.Header.Tables, t.Name)
	}
	zw := gzip.NewWriter(w)
	bw := bufio.NewWriterSize(zw, 256<<10)
	if err := writeLine(bw, magic); err != nil {
		return Manifest{}, err
	}
	if err := writeJSON(bw, "", m.Header); err != nil {
		return Manifest{}, err
	}
	for _, t := range ts {
		if err := writeJSON(bw, "TABLE ", t); err != nil {
			return Manifest{}, err
		}
		cw := &countingHash{w: bw, h: sha256.New()}
		tag, err := tx.Conn().PgConn().CopyTo(ctx, cw, t.selectSQL())
		if err != nil {
			return Manifest{}, fmt.Errorf("copy %s: %w", t.Name, err)
		}
		if err := writeLine(bw, `\.`); err != nil {
			return Manifest{}, err
		}
		sum := TableSum{Name: t.Name, Columns: t.Columns, Rows: tag.RowsAffected(), SHA256: hex.EncodeToString(cw.h.Sum(nil)), Bytes: cw.n}
		m.Tables = append(m.Tables, sum)
		if o.Progress != nil {
			o.Progress(t.Name, sum.Rows)
		}
	}
	if m.Sequences, err = sequences(ctx, tx); err != nil {
		return Manifest{}, err
	}
	m.FinishedAt = time.Now().UTC()
	if err := writeJSON(bw, "END ", trailer{m.Tables, m.Sequences, m.FinishedAt}); err != nil {
		return Manifest{}, err
	}
	if err := bw.Flush(); err != nil {
		return Manifest{}, err
	}
	if err := zw.Close(); err != nil {
		return Manifest{}, err
	}
	return m, tx.Commit(ctx)
}

type countingHash struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return c.w.Write(p)
}

func writeLine(w *bufio.Writer, s string) error {
	_, err := w.WriteString(s + "\n")
	return err
}

func writeJSON(w *bufio.Writer, prefix string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeLine(w, prefix+string(b))
}

// ErrNotEmpty refuses a restore over data.
var ErrNotEmpty = errors.New("the target database already holds data")

// RestoreOptions control a restore.
type RestoreOptions struct {
	// Migrate brings the empty target to the backup's schema version
	// before the rows are loaded.
	Migrate func(ctx context.Context, version int64) error
	// Replace allows restoring over existing data (it is deleted).
	Replace bool
	// Occupied reports whether the target holds data already.
	Occupied func(ctx context.Context, conn *pgx.Conn) (bool, error)
	// After runs in the restore's transaction once every table is loaded
	// and verified (the application's own fix-ups).
	After    func(ctx context.Context, tx pgx.Tx) error
	Progress func(table string, rows int64)
}

// Restore reads a backup from r into conn's database in one transaction:
// the schema is migrated to the backup's version, every table emptied and
// loaded with triggers and foreign keys off (session_replication_role =
// replica: the rows are already consistent, and append-only guards must not
// refuse history), sequences moved past the restored ids, and every table
// read back and compared with the backup's row count and SHA-256 before
// COMMIT. A damaged or truncated backup changes nothing.
func Restore(ctx context.Context, conn *pgx.Conn, r io.Reader, o RestoreOptions) (Manifest, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return Manifest{}, fmt.Errorf("not a hospital-erp backup (gzip: %v)", err)
	}
	br := bufio.NewReaderSize(zr, 256<<10)
	line, err := readLine(br)
	if err != nil || line != magic {
		return Manifest{}, fmt.Errorf("not a hospital-erp backup (first line %q)", line)
	}
	var m Manifest
	if line, err = readLine(br); err != nil {
		return Manifest{}, err
	}
	if err := json.Unmarshal([]byte(line), &m.Header); err != nil || m.Format != 1 {
		return Manifest{}, fmt.Errorf("unreadable backup header: %v", err)
	}
	if o.Occupied != nil {
		busy, err := o.Occupied(ctx, conn)
		if err != nil {
			return Manifest{}, err
		}
		if busy && !o.Replace {
			return Manifest{}, ErrNotEmpty
		}
	}
	if o.Migrate != nil {
		if err := o.Migrate(ctx, m.SchemaVersion); err != nil {
			return Manifest{}, err
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return Manifest{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		return Manifest{}, fmt.Errorf("restore needs a superuser (or rds_superuser) connection: %w", err)
	}
	if len(m.Header.Tables) > 0 {
		names := make([]string, len(m.Header.Tables))
		for i, n := range m.Header.Tables {
			names[i] = pgx.Identifier{n}.Sanitize()
		}
		// Rows the migrations wrote (reference data) come back from the backup.
		if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")); err != nil {
			return Manifest{}, fmt.Errorf("empty the tables: %w", err)
		}
	}
	loaded := map[string]table{}
	for {
		line, err := readLine(br)
		if err != nil {
			return Manifest{}, fmt.Errorf("backup ends early: %w", err)
		}
		if rest, ok := strings.CutPrefix(line, "END "); ok {
			var tr trailer
			if err := json.Unmarshal([]byte(rest), &tr); err != nil {
				return Manifest{}, fmt.Errorf("unreadable backup trailer: %v", err)
			}
			m.Tables, m.Sequences, m.FinishedAt = tr.Tables, tr.Sequences, tr.FinishedAt
			break
		}
		rest, ok := strings.CutPrefix(line, "TABLE ")
		if !ok {
			return Manifest{}, fmt.Errorf("damaged backup: unexpected line %.60q", line)
		}
		var t table
		if err := json.Unmarshal([]byte(rest), &t); err != nil {
			return Manifest{}, fmt.Errorf("damaged backup: %v", err)
		}
		sql := fmt.Sprintf("COPY %s (%s) FROM STDIN", pgx.Identifier{t.Name}.Sanitize(), idents(t.Columns))
		tag, err := tx.Conn().PgConn().CopyFrom(ctx, &tableReader{r: br}, sql)
		if err != nil {
			return Manifest{}, fmt.Errorf("load %s: %w", t.Name, err)
		}
		loaded[t.Name] = t
		if o.Progress != nil {
			o.Progress(t.Name, tag.RowsAffected())
		}
	}
	if len(m.Tables) != len(m.Header.Tables) || len(loaded) != len(m.Tables) {
		return Manifest{}, fmt.Errorf("damaged backup: %d tables announced, %d loaded, %d summed", len(m.Header.Tables), len(loaded), len(m.Tables))
	}
	// Read every table back: the database now holds exactly what was saved.
	for _, sum := range m.Tables {
		t, ok := loaded[sum.Name]
		if !ok {
			return Manifest{}, fmt.Errorf("damaged backup: no data for %s", sum.Name)
		}
		pk, err := copyOrder(ctx, tx, t.Name)
		if err != nil {
			return Manifest{}, err
		}
		t.orderBy = pk
		if len(pk) == 0 {
			t.orderBy = t.Columns
		}
		cw := &countingHash{w: io.Discard, h: sha256.New()}
		tag, err := tx.Conn().PgConn().CopyTo(ctx, cw, t.selectSQL())
		if err != nil {
			return Manifest{}, fmt.Errorf("verify %s: %w", t.Name, err)
		}
		if got := hex.EncodeToString(cw.h.Sum(nil)); got != sum.SHA256 || tag.RowsAffected() != sum.Rows {
			return Manifest{}, fmt.Errorf("verify %s: restored %d rows (sha256 %s), the backup has %d (sha256 %s)",
				t.Name, tag.RowsAffected(), got[:12], sum.Rows, sum.SHA256[:12])
		}
	}
	if err := resetSequences(ctx, tx, m.Sequences); err != nil {
		return Manifest{}, err
	}
	if o.After != nil {
		if err := o.After(ctx, tx); err != nil {
			return Manifest{}, err
		}
	}
	return m, tx.Commit(ctx)
}

func copyOrder(ctx context.Context, tx pgx.Tx, name string) ([]string, error) {
	var pk []string
	err := tx.QueryRow(ctx, `SELECT `+orderKey("to_regclass($1)"), pgx.Identifier{name}.Sanitize()).Scan(&pk)
	return pk, err
}

// orderKey is the SQL of the columns a table's rows are copied in order of:
// its primary key, else its identity column (a partitioned table such as
// audit_events has no primary key; its ids come from the identity
// sequence), else none, and the caller orders by every column.
func orderKey(rel string) string {
	return `coalesce(nullif(array(SELECT a.attname FROM pg_index i
		       JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true
		       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		       WHERE i.indrelid = ` + rel + ` AND i.indisprimary ORDER BY k.n), '{}'),
		   array(SELECT a.attname FROM pg_attribute a
		         WHERE a.attrelid = ` + rel + ` AND a.attnum > 0 AND a.attidentity <> '' ORDER BY a.attnum))::text[]`
}

// sequences reads the last value of every sequence of the schema (sequence
// reads ignore the snapshot: the value is at least the snapshot's, which is
// what restore needs).
func sequences(ctx context.Context, tx pgx.Tx) (map[string]int64, error) {
	rows, err := tx.Query(ctx, `SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences WHERE schemaname = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("read sequences: %w", err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, rows.Err()
}

// resetSequences sets every sequence past both its backed-up value and the
// largest restored value of the column that owns it.
func resetSequences(ctx context.Context, tx pgx.Tx, saved map[string]int64) error {
	for name, v := range saved {
		if v > 0 {
			if _, err := tx.Exec(ctx, "SELECT setval($1, $2, true)", pgx.Identifier{name}.Sanitize(), v); err != nil {
				return fmt.Errorf("sequence %s: %w", name, err)
			}
		}
	}
	rows, err := tx.Query(ctx, `
		SELECT format('%I', c.relname), format('%I', a.attname), pg_get_serial_sequence(format('%I', c.relname), a.attname)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND pg_get_serial_sequence(format('%I', c.relname), a.attname) IS NOT NULL`)
	if err != nil {
		return err
	}
	type seq struct{ table, column, name string }
	var seqs []seq
	for rows.Next() {
		var s seq
		if err := rows.Scan(&s.table, &s.column, &s.name); err != nil {
			return err
		}
		seqs = append(seqs, s)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range seqs {
		q := fmt.Sprintf(`SELECT setval($1, greatest(coalesce((SELECT max(%s) FROM %s), 0),
			(SELECT coalesce(last_value, 0) FROM pg_sequences WHERE format('%%I.%%I', schemaname, sequencename) = $1::regclass::text
			   OR sequencename = $1::regclass::text)) + 1, false)`, s.column, s.table)
		if _, err := tx.Exec(ctx, q, s.name); err != nil {
			return fmt.Errorf("sequence %s: %w", s.name, err)
		}
	}
	return nil
}

// tableReader yields one table's COPY lines and stops at the "\." line.
type tableReader struct {
	r    *bufio.Reader
	buf  []byte
	done bool
	mid  bool // inside a row longer than the buffer
}

func (t *tableReader) Read(p []byte) (int, error) {
	for len(t.buf) == 0 {
		if t.done {
			return 0, io.EOF
		}
		line, err := t.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A row longer than the buffer: pass it on in pieces.
			t.buf = append(t.buf[:0], line...)
			t.mid = true
			break
		}
		if err != nil {
			return 0, fmt.Errorf("backup ends inside a table: %w", err)
		}
		if !t.mid && bytes.Equal(line, []byte("\\.\n")) {
			t.done = true
			return 0, io.EOF
		}
		t.mid = false
		t.buf = append(t.buf[:0], line...)
	}
	n := copy(p, t.buf)
	t.buf = t.buf[n:]
	return n, nil
}

func readLine(r *bufio.Reader) (string, error) {
	s, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(s, "\n"), nil
}
