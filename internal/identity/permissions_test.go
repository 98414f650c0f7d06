package identity_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/hospital-erp/hospital-erp/internal/identity"
)

var update = flag.Bool("update", false, "rewrite docs/permissions.md")

// docs/permissions.md is the permission table rendered for review by the
// hospital; it must match the code.
func TestPermissionMatrixDoc(t *testing.T) {
	want := identity.PermissionMatrix()
	path := "../../docs/permissions.md"
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("docs/permissions.md is stale: run go test ./internal/identity -run TestPermissionMatrixDoc -update")
	}
	if !strings.Contains(want, "| patient.read |") {
		t.Fatal("matrix lacks patient.read")
	}
}

// Billing staff never see clinical notes; only auditors read the audit trail.
func TestSeparationOfDuties(t *testing.T) {
	billing := identity.PermissionSet(identity.RoleBillingClerk)
	if billing[identity.PermClinicalRead] || billing[identity.PermClinicalWrite] {
		t.Fatal("billing clerk can see clinical notes")
	}
	for _, role := range identity.Roles() {
		if identity.PermissionSet(role)[identity.PermAuditRead] && role != identity.RoleAuditor {
			t.Fatalf("%s can read the audit trail", role)
		}
	}
}
