package postgres_test

import (
	"context"
	"testing"

	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

// Every migration's Down undoes its Up: from the latest version all the
// way down to an empty schema, then up again, on a fresh database.
func TestMigrationsGoDownAndUpAgain(t *testing.T) {
	d := testenv.NewDatabase(t)
	ctx := context.Background()
	db, err := postgres.OpenDirect(d.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := postgres.Provider(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("down to nothing: %v", err)
	}
	if v, err := p.GetDBVersion(ctx); err != nil || v != 0 {
		t.Fatalf("version after going down: %d, %v", v, err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if v, err := p.GetDBVersion(ctx); err != nil || v != postgres.LatestMigration() {
		t.Fatalf("version after going up again: %d, %v; want %d", v, err, postgres.LatestMigration())
	}
}
