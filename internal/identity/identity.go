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
	PermPatientRead  = "patient.read"
	PermPatientWrite = "patient.write"
	// PermPatientMerge lets a user merge duplicate records (and undo it).
	PermPatientMerge     = "patient.merge"
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
	// PermEmergencyAccess lets a user open a patient outside their scope
	// by giving a reason ("break the glass").
	PermEmergencyAccess = "patient.emergency_access"
	// PermEmergencyReview lets a user review emergency access grants.
	PermEmergencyReview = "emergency_access.review"
)

// RolePermissions is the permission table: what each role may do. It is
// rendered into docs/permissions.md for review by the hospital.
var RolePermissions = map[string][]string{
	RoleAdmin: {PermFacilityRead, PermFacilityWrite, PermStaffRead, PermStaffWrite, PermUserAdmin,
		PermBedRead, PermReportRead, PermEmergencyReview},
	RolePhysician: {PermPatientRead, PermPatientWrite, PermAppointmentRead, PermAppointmentWrite,
		PermAdmissionRead, PermAdmissionWrite, PermBedRead, PermClinicalRead, PermClinicalWrite,
		PermPrescribe, PermLabRead, PermFacilityRead, PermReportRead, PermEmergencyAccess},
	RoleNurse: {PermPatientRead, PermAppointmentRead, PermAdmissionRead, PermAdmissionWrite,
		PermBedRead, PermBedWrite, PermClinicalRead, PermClinicalWrite, PermLabRead, PermFacilityRead,
		PermEmergencyAccess},
	RoleReceptionist: {PermPatientRead, PermPatientWrite, PermPatientMerge, PermAppointmentRead, PermAppointmentWrite,
		PermAdmissionRead, PermAdmissionWrite, PermBedRead, PermFacilityRead},
	RolePharmacist:    {PermPatientRead, PermDispense, PermInventoryRead, PermFacilityRead},
	RoleLabTechnician: {PermPatientRead, PermLabRead, PermLabWrite, PermFacilityRead},
	RoleBillingClerk: {PermPatientRead, PermAppointmentRead, PermAdmissionRead, PermInvoiceRead,
		PermInvoiceWrite, PermFacilityRead},
	RoleInventoryManager: {PermInventoryRead, PermInventoryWrite, PermFacilityRead},
	RoleAuditor:          {PermAuditRead, PermReportRead, PermFacilityRead, PermStaffRead, PermEmergencyReview},
}

// MFARequired are the roles that must use multi-factor authentication:
// until they enrol, their sessions may do nothing but enrol.
var MFARequired = map[string]bool{RoleAdmin: true, RoleAuditor: true}

// CareScoped are the roles that see a patient only through a care
// relationship (their ward, department or themselves) or an emergency
// access grant. Other roles with patient.read see every patient's
// demographics; what they see beyond is limited by their permissions
// (billing staff never hold clinical.read).
var CareScoped = map[string]bool{RolePhysician: true, RoleNurse: true}

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

// PermissionSet returns the permissions of role as a set, shared by every
// caller (it is built once, not per request): it must not be changed.
func PermissionSet(role string) map[string]bool {
	if set, ok := permissionSets[role]; ok {
		return set
	}
	return map[string]bool{}
}

var permissionSets = func() map[string]map[string]bool {
	sets := map[string]map[string]bool{}
	for role, perms := range RolePermissions {
		sets[role] = map[string]bool{}
		for _, p := range perms {
			sets[role][p] = true
		}
	}
	return sets
}()

// User is a person who can sign in.
type User struct {
	ID                string     `json:"id"`
	Username          string     `json:"username"`
	DisplayName       string     `json:"display_name"`
	Role              string     `json:"role"`
	DepartmentID      string     `json:"department_id,omitempty"`
	WardIDs           []string   `json:"ward_ids"`
	Active            bool       `json:"active"`
	MFAEnabled        bool       `json:"mfa_enabled"`
	MFARequired       bool       `json:"mfa_required"`
	LastLoginAt       *time.Time `json:"last_login_at,omitempty"`
	PasswordChangedAt time.Time  `json:"password_changed_at"`
	Version           int        `json:"version"`
	CreatedAt         time.Time  `json:"created_at"`
}

// Me is the signed-in user with their permissions, for GET /auth/me.
type Me struct {
	User
	Permissions []string  `json:"permissions"`
	SessionID   string    `json:"session_id"`
	ExpiresAt   time.Time `json:"session_expires_at"`
	// MFAEnrolmentRequired: the user must enrol before doing anything else.
	MFAEnrolmentRequired bool `json:"mfa_enrolment_required"`
	// IdleTimeoutSeconds is when an unused session ends (for the UI's
	// automatic log-off).
	IdleTimeoutSeconds int `json:"idle_timeout_seconds"`
}

// TokenResponse is the OAuth2-style answer to a login.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// LoginRequest is the body of POST /api/v1/auth/login. OTP is a code from
// the authenticator app, or a recovery code, for users with MFA.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	OTP      string `json:"otp,omitempty"`
}

// PasswordChange is the body of POST /api/v1/auth/password.
type PasswordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// MFAEnrolment is the answer to starting MFA enrolment: the secret to put
// into an authenticator app, as text, as an otpauth:// URI and as a QR code.
type MFAEnrolment struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
	// QRCodePNG is a data: URL of a PNG QR code of OTPAuthURI.
	QRCodePNG string `json:"qr_code_png"`
}

// MFAConfirm is the body of POST /api/v1/auth/mfa/confirm.
type MFAConfirm struct {
	Code string `json:"code"`
}

// RecoveryCodes are shown once, when MFA is enabled.
type RecoveryCodes struct {
	Codes []string `json:"recovery_codes"`
}

// MFADisable is the body of POST /api/v1/auth/mfa/disable.
type MFADisable struct {
	Password string `json:"password"`
}

// Ticket is a short-lived token for opening the WebSocket from a browser,
// which cannot set an Authorization header on the upgrade request.
type Ticket struct {
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}
