package identity

import (
	"sort"
	"strings"
)

// PermissionMatrix renders RolePermissions as a Markdown table, the form a
// hospital reviews (docs/permissions.md).
func PermissionMatrix() string {
	perms := map[string]bool{}
	for _, ps := range RolePermissions {
		for _, p := range ps {
			perms[p] = true
		}
	}
	names := make([]string, 0, len(perms))
	for p := range perms {
		names = append(names, p)
	}
	sort.Strings(names)
	roles := Roles()
	var b strings.Builder
	b.WriteString("# Permissions by role\n\n")
	b.WriteString("Generated from `internal/identity/identity.go` (`RolePermissions`); a test fails when this file is stale.\n")
	b.WriteString("Regenerate with `go test ./internal/identity -run TestPermissionMatrixDoc -update`.\n\n")
	b.WriteString("Every service checks one of these permissions before it reads or changes anything. ")
	b.WriteString("Reads and changes of patient data are written to the audit trail in the same transaction.\n\n")
	b.WriteString("| permission |")
	for _, r := range roles {
		b.WriteString(" " + RoleNames[r] + " |")
	}
	b.WriteString("\n|---|")
	for range roles {
		b.WriteString(":---:|")
	}
	b.WriteString("\n")
	for _, p := range names {
		b.WriteString("| " + p + " |")
		for _, r := range roles {
			if PermissionSet(r)[p] {
				b.WriteString(" ✔ |")
			} else {
				b.WriteString("   |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
