// Package identity is who may do what: users and their roles, the
// permission table, passwords, access tokens and sessions.
package identity

import (
	"sort"
	"time"
)

// Roles.
const (
	RoleAdmin            = "admin"
	RolePhysician        = "physician"
	RoleNurse            = "nurse"
	RoleReceptionist     = "receptionist"
	RolePharmacist       = "pharmacist"
	RoleLabTechnician    = "lab_technician"
	RoleBillingClerk     = "billing_clerk"
	RoleInventoryManager = "inventory_manager"
	RoleAuditor          = "auditor"
)

// Permissions. A service checks one of these before it does anything.
const (
	PermPatientRead      = "patient.read"
	PermPatientWrite     = "patient.write"
	PermAppointmentRead  = "appointment.read"
	PermAppointmentWrite = "appointment.write"
	PermAdmissionRead    = "admission.read"
	PermAdmissionWrite   = "admission.write"
	PermBedRead          = "bed.read"
	PermBedWrite         = "bed.write"
	PermClinicalRead     = "clinical.read"
	PermClinicalWrite    = "clinical.write"
	PermPrescribe        = "prescription.write"
	PermDispense         = "pharmacy.dispense"
	PermLabRead          = "lab.read"
	PermLabWrite         = "lab.write"
	PermInvoiceRead      = "invoice.read"
	PermInvoiceWrite     = "invoice.write"
	PermInventoryRead    = "inventory.read"
	PermInventoryWrite   = "inventory.write"
	PermFacilityRead     = "facility.read"
	PermFacilityWrite    = "facility.write"
	PermStaffRead        = "staff.read"
	PermStaffWrite       = "staff.write"
	PermUserAdmin        = "user.admin"
	PermAuditRead        = "audit.read"
	PermReportRead       = "report.read"
)

// RolePermissions is the permission table: what each role may do. It is
// rendered into docs/permissions.md for review by the hospital.
var RolePermissions = map[string][]string{
	RoleAdmin: {PermFacilityRead, PermFacilityWrite, PermStaffRead, PermStaffWrite, PermUserAdmin,
		PermBedRead, PermReportRead},
	RolePhysician: {PermPatientRead, PermPatientWrite, PermAppointmentRead, PermAppointmentWrite,
		PermAdmissionRead, PermAdmissionWrite, PermBedRead, PermClinicalRead, PermClinicalWrite,
		PermPrescribe, PermLabRead, PermFacilityRead, PermReportRead},
	RoleNurse: {PermPatientRead, PermAppointmentRead, PermAdmissionRead, PermAdmissionWrite,
		PermBedRead, PermBedWrite, PermClinicalRead, PermClinicalWrite, PermLabRead, PermFacilityRead},
	RoleReceptionist: {PermPatientRead, PermPatientWrite, PermAppointmentRead, PermAppointmentWrite,
		PermAdmissionRead, PermBedRead, PermFacilityRead},
	RolePharmacist:    {PermPatientRead, PermDispense, PermInventoryRead, PermFacilityRead},
	RoleLabTechnician: {PermPatientRead, PermLabRead, PermLabWrite, PermFacilityRead},
	RoleBillingClerk: {PermPatientRead, PermAppointmentRead, PermAdmissionRead, PermInvoiceRead,
		PermInvoiceWrite, PermFacilityRead},
	RoleInventoryManager: {PermInventoryRead, PermInventoryWrite, PermFacilityRead},
	RoleAuditor:          {PermAuditRead, PermReportRead, PermFacilityRead, PermStaffRead},
}

// RoleNames are the display names of the roles.
var RoleNames = map[string]string{
	RoleAdmin: "System administrator", RolePhysician: "Physician", RoleNurse: "Nurse",
	RoleReceptionist: "Receptionist", RolePharmacist: "Pharmacist", RoleLabTechnician: "Lab technician",
	RoleBillingClerk: "Billing clerk", RoleInventoryManager: "Inventory manager", RoleAuditor: "Auditor",
}

// Roles returns every role, sorted.
func Roles() []string {
	out := make([]string, 0, len(RolePermissions))
	for r := range RolePermissions {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// PermissionSet returns the permissions of role as a set.
func PermissionSet(role string) map[string]bool {
	set := map[string]bool{}
	for _, p := range RolePermissions[role] {
		set[p] = true
	}
	return set
}

// User is a person who can sign in.
type User struct {
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	DisplayName  string    `json:"display_name"`
	Role         string    `json:"role"`
	DepartmentID string    `json:"department_id,omitempty"`
	Active       bool      `json:"active"`
	CreatedAt    time.Time `json:"created_at"`
}

// Me is the signed-in user with their permissions, for GET /auth/me.
type Me struct {
	User
	Permissions []string  `json:"permissions"`
	SessionID   string    `json:"session_id"`
	ExpiresAt   time.Time `json:"session_expires_at"`
}

// TokenResponse is the OAuth2-style answer to a login.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// LoginRequest is the body of POST /api/v1/auth/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Ticket is a short-lived token for opening the WebSocket from a browser,
// which cannot set an Authorization header on the upgrade request.
type Ticket struct {
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}
