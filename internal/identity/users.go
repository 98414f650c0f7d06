package identity

import (
	"context"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// NewUser is the body of POST /api/v1/users.
type NewUser struct {
	Username     string   `json:"username"`
	DisplayName  string   `json:"display_name"`
	Role         string   `json:"role"`
	DepartmentID string   `json:"department_id"`
	WardIDs      []string `json:"ward_ids"`
	Password     string   `json:"password"`
}

// UserUpdate is the body of PUT /api/v1/users/{id} (with If-Match).
type UserUpdate struct {
	DisplayName  string   `json:"display_name"`
	Role         string   `json:"role"`
	DepartmentID string   `json:"department_id"`
	WardIDs      []string `json:"ward_ids"`
}

// PasswordReset is the body of POST /api/v1/users/{id}/password.
type PasswordReset struct {
	NewPassword string `json:"new_password"`
}

// UserFilter selects users for the administration list.
type UserFilter struct {
	Query  *string
	Role   *string
	Active *bool
}

// RoleInfo describes a role for the administration UI.
type RoleInfo struct {
	Role            string   `json:"role"`
	Name            string   `json:"name"`
	Permissions     []string `json:"permissions"`
	MFARequired     bool     `json:"mfa_required"`
	CareScoped      bool     `json:"care_scoped"`
	EmergencyAccess bool     `json:"emergency_access"`
}

// RoleList returns every role with its permissions.
func RoleList() []RoleInfo {
	out := []RoleInfo{}
	for _, r := range Roles() {
		perms := append([]string(nil), RolePermissions[r]...)
		sort.Strings(perms)
		out = append(out, RoleInfo{Role: r, Name: RoleNames[r], Permissions: perms, MFARequired: MFARequired[r],
			CareScoped: CareScoped[r], EmergencyAccess: PermissionSet(r)[PermEmergencyAccess]})
	}
	return out
}

func (s *Service) userByID(ctx context.Context, q *dbgen.Queries, id uuid.UUID) (User, error) {
	row, err := q.UserGet(ctx, id)
	if err != nil {
		return User{}, postgres.Translate(err)
	}
	wards, err := q.UserWardIDs(ctx, id)
	if err != nil {
		return User{}, postgres.Translate(err)
	}
	return userFromRow(row, wards), nil
}

func userFromRow(r dbgen.User, wards []uuid.UUID) User {
	u := User{ID: r.ID.String(), Username: r.Username, DisplayName: r.DisplayName, Role: r.Role, Active: r.Active,
		WardIDs: uuidStrings(wards), MFAEnabled: r.MfaEnabledAt != nil, MFARequired: MFARequired[r.Role],
		LastLoginAt: r.LastLoginAt, PasswordChangedAt: r.PasswordChangedAt, Version: int(r.Version), CreatedAt: r.CreatedAt}
	if r.DepartmentID != nil {
		u.DepartmentID = r.DepartmentID.String()
	}
	return u
}

func (s *Service) validateAssignment(v *hospital.Validation, role, displayName, departmentID string, wardIDs []string) (*uuid.UUID, []uuid.UUID) {
	v.Check(strings.TrimSpace(displayName) != "" && len(displayName) <= 200, "display_name", "is required (at most 200 characters)")
	_, known := RolePermissions[role]
	v.Check(known, "role", "must be one of "+strings.Join(Roles(), ", "))
	var dept *uuid.UUID
	if departmentID != "" {
		id, err := uuid.Parse(departmentID)
		v.Check(err == nil, "department_id", "must be a department id")
		dept = &id
	}
	v.Check(len(wardIDs) <= 50, "ward_ids", "at most 50 wards")
	var wards []uuid.UUID
	for _, w := range wardIDs {
		id, err := uuid.Parse(w)
		if err != nil {
			v.Add("ward_ids", "must be ward ids")
			continue
		}
		wards = append(wards, id)
	}
	return dept, wards
}

func setWards(ctx context.Context, q *dbgen.Queries, user uuid.UUID, wards []uuid.UUID) error {
	if err := q.UserWardsClear(ctx, user); err != nil {
		return err
	}
	for _, w := range wards {
		if err := q.UserWardAdd(ctx, dbgen.UserWardAddParams{UserID: user, WardID: w}); err != nil {
			return err
		}
	}
	return nil
}

// CreateUser adds a user. Returns EINVALID for a bad name, role, ward or
// password, ECONFLICT when the username is taken, EFORBIDDEN without
// user.admin (system start-up passes a context without an actor through
// CreateUserAsSystem).
func (s *Service) CreateUser(ctx context.Context, in NewUser) (User, error) {
	if _, err := hospital.Require(ctx, PermUserAdmin); err != nil {
		return User{}, err
	}
	return s.createUser(ctx, in)
}

// CreateUserAsSystem adds a user without an acting user: for the demo
// loader, first-run bootstrap and tests.
func (s *Service) CreateUserAsSystem(ctx context.Context, username, displayName, role, departmentID, password string) (User, error) {
	return s.createUser(ctx, NewUser{Username: username, DisplayName: displayName, Role: role, DepartmentID: departmentID, Password: password})
}

func (s *Service) createUser(ctx context.Context, in NewUser) (User, error) {
	var v hospital.Validation
	username := strings.ToLower(strings.TrimSpace(in.Username))
	v.Check(validUsername(username), "username", "must be 3-64 characters: lowercase letters, digits, . _ -")
	dept, wards := s.validateAssignment(&v, in.Role, in.DisplayName, in.DepartmentID, in.WardIDs)
	if p := PasswordProblem(in.Password, username, in.DisplayName); p != "" {
		v.Add("password", p)
	}
	if err := v.Err(); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	var u User
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		row, err := q.UserCreate(ctx, dbgen.UserCreateParams{Username: username, DisplayName: strings.TrimSpace(in.DisplayName),
			Role: in.Role, DepartmentID: dept, PasswordHash: hash})
		if err != nil {
			return err
		}
		if err := setWards(ctx, q, row.ID, wards); err != nil {
			return err
		}
		u = userFromRow(row, wards)
		return audit.Write(ctx, q, audit.Entry{Action: "user.create", ResourceType: "user", ResourceID: row.ID.String(),
			Details: map[string]any{"role": in.Role, "wards": len(wards)}})
	})
	if hospital.ErrorCode(err) == hospital.ECONFLICT {
		return User{}, &hospital.Error{Code: hospital.ECONFLICT, Message: "This username is taken.",
			Fields: map[string]string{"username": "is taken"}, Err: err}
	}
	return u, err
}

// ListUsers returns a page of users ordered by username. Returns
// EFORBIDDEN without user.admin.
func (s *Service) ListUsers(ctx context.Context, f UserFilter, page httpx.PageRequest) (httpx.Page[User], error) {
	if _, err := hospital.Require(ctx, PermUserAdmin); err != nil {
		return httpx.Page[User]{}, err
	}
	var after *string
	if page.Cursor != "" {
		var c struct {
			U string `json:"u"`
		}
		if err := httpx.DecodeCursor(page.Cursor, &c); err != nil {
			return httpx.Page[User]{}, err
		}
		after = &c.U
	}
	rows, err := s.db.Queries().UserList(ctx, dbgen.UserListParams{Prefix: f.Query, Role: f.Role, Active: f.Active,
		AfterUsername: after, Lim: int32(page.Limit + 1)})
	if err != nil {
		return httpx.Page[User]{}, postgres.Translate(err)
	}
	out := httpx.Page[User]{Items: []User{}, Sort: "username", Limit: page.Limit}
	for i, r := range rows {
		if i == page.Limit {
			out.NextCursor = httpx.EncodeCursor(struct {
				U string `json:"u"`
			}{rows[i-1].Username})
			break
		}
		out.Items = append(out.Items, userFromRow(dbgen.User{ID: r.ID, Username: r.Username, DisplayName: r.DisplayName,
			Role: r.Role, DepartmentID: r.DepartmentID, Active: r.Active, Version: r.Version, CreatedAt: r.CreatedAt,
			MfaEnabledAt: r.MfaEnabledAt, LastLoginAt: r.LastLoginAt, PasswordChangedAt: r.PasswordChangedAt}, r.WardIds))
	}
	return out, nil
}

// GetUser returns one user. Returns ENOTFOUND, EFORBIDDEN without user.admin.
func (s *Service) GetUser(ctx context.Context, id string) (User, error) {
	if _, err := hospital.Require(ctx, PermUserAdmin); err != nil {
		return User{}, err
	}
	uid, err := parseUserID(id)
	if err != nil {
		return User{}, err
	}
	u, err := s.userByID(ctx, s.db.Queries(), uid)
	return u, notFoundAs(err, "No user has this id.")
}

// UpdateUser changes a user's name, role, department and wards when
// version is current. A role change is a privilege change: audited with the
// old and new role, and the user's sessions see it within seconds.
// Returns EPRECONDITION for a stale version, ECONFLICT when an
// administrator would change their own role.
func (s *Service) UpdateUser(ctx context.Context, id string, version int, in UserUpdate) (User, error) {
	a, err := hospital.Require(ctx, PermUserAdmin)
	if err != nil {
		return User{}, err
	}
	uid, err := parseUserID(id)
	if err != nil {
		return User{}, err
	}
	var v hospital.Validation
	dept, wards := s.validateAssignment(&v, in.Role, in.DisplayName, in.DepartmentID, in.WardIDs)
	if err := v.Err(); err != nil {
		return User{}, err
	}
	var u User
	var sessions []uuid.UUID
	_, err = idempotency.Do(ctx, s.db, &u, func(q *dbgen.Queries) error {
		before, err := q.UserGet(ctx, uid)
		if err != nil {
			return err
		}
		if a.UserID == uid.String() && before.Role != in.Role {
			return hospital.Errorf(hospital.ECONFLICT, "You cannot change your own role; ask another administrator.")
		}
		row, err := q.UserUpdate(ctx, dbgen.UserUpdateParams{ID: uid, Version: int32(version), DisplayName: strings.TrimSpace(in.DisplayName),
			Role: in.Role, DepartmentID: dept})
		if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
			return hospital.Errorf(hospital.EPRECONDITION, "This user was changed by someone else; reload and try again.")
		} else if err != nil {
			return err
		}
		if err := setWards(ctx, q, uid, wards); err != nil {
			return err
		}
		u = userFromRow(row, wards)
		// Cached sessions carry role and wards: drop them.
		if sessions, err = q.SessionIDsForUser(ctx, uid); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "user.update", ResourceType: "user", ResourceID: uid.String(),
			Details: map[string]any{"role_before": before.Role, "role_after": in.Role, "wards": len(wards)}})
	})
	if err != nil {
		return User{}, notFoundAs(err, "No user has this id.")
	}
	s.dropSessions(ctx, sessions)
	return u, nil
}

// SetActive disables or re-enables a user. Disabling ends every session
// of the user at once. Returns ECONFLICT when administrators would disable
// themselves.
func (s *Service) SetActive(ctx context.Context, id string, active bool) (User, error) {
	a, err := hospital.Require(ctx, PermUserAdmin)
	if err != nil {
		return User{}, err
	}
	uid, err := parseUserID(id)
	if err != nil {
		return User{}, err
	}
	if !active && a.UserID == uid.String() {
		return User{}, hospital.Errorf(hospital.ECONFLICT, "You cannot disable your own account.")
	}
	var u User
	var revoked []uuid.UUID
	_, err = idempotency.Do(ctx, s.db, &u, func(q *dbgen.Queries) error {
		row, err := q.UserSetActive(ctx, dbgen.UserSetActiveParams{ID: uid, Active: active})
		if err != nil {
			return err
		}
		action := "user.enable"
		if !active {
			action = "user.disable"
			if revoked, err = q.SessionsRevokeForUser(ctx, dbgen.SessionsRevokeForUserParams{UserID: uid, RevokeReason: ptr("user disabled")}); err != nil {
				return err
			}
		}
		wards, err := q.UserWardIDs(ctx, uid)
		if err != nil {
			return err
		}
		u = userFromRow(row, wards)
		return audit.Write(ctx, q, audit.Entry{Action: action, ResourceType: "user", ResourceID: uid.String(),
			Details: map[string]any{"sessions_ended": len(revoked)}})
	})
	if err != nil {
		return User{}, notFoundAs(err, "No user has this id.")
	}
	s.dropSessions(ctx, revoked)
	return u, nil
}

// RevokeSessions ends every session of a user and returns how many.
func (s *Service) RevokeSessions(ctx context.Context, id string) (int, error) {
	if _, err := hospital.Require(ctx, PermUserAdmin); err != nil {
		return 0, err
	}
	uid, err := parseUserID(id)
	if err != nil {
		return 0, err
	}
	var revoked []uuid.UUID
	ended := 0
	_, err = idempotency.Do(ctx, s.db, &ended, func(q *dbgen.Queries) error {
		if _, err := q.UserGet(ctx, uid); err != nil {
			return err
		}
		if revoked, err = q.SessionsRevokeForUser(ctx, dbgen.SessionsRevokeForUserParams{UserID: uid, RevokeReason: ptr("ended by administrator")}); err != nil {
			return err
		}
		ended = len(revoked)
		return audit.Write(ctx, q, audit.Entry{Action: "user.sessions_revoke", ResourceType: "user", ResourceID: uid.String(),
			Details: map[string]any{"sessions_ended": len(revoked)}})
	})
	if err != nil {
		return 0, notFoundAs(err, "No user has this id.")
	}
	s.dropSessions(ctx, revoked)
	return ended, nil
}

// ResetPassword sets a new password chosen by an administrator and ends
// the user's sessions.
func (s *Service) ResetPassword(ctx context.Context, id string, in PasswordReset) error {
	if _, err := hospital.Require(ctx, PermUserAdmin); err != nil {
		return err
	}
	uid, err := parseUserID(id)
	if err != nil {
		return err
	}
	row, err := s.db.Queries().UserGet(ctx, uid)
	if err != nil {
		return notFoundAs(postgres.Translate(err), "No user has this id.")
	}
	if p := PasswordProblem(in.NewPassword, row.Username, row.DisplayName); p != "" {
		return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.", Fields: map[string]string{"new_password": p}}
	}
	hash, err := HashPassword(ctx, in.NewPassword)
	if err != nil {
		return err
	}
	var revoked []uuid.UUID
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if err := q.UserSetPassword(ctx, dbgen.UserSetPasswordParams{ID: uid, PasswordHash: hash}); err != nil {
			return err
		}
		if revoked, err = q.SessionsRevokeForUser(ctx, dbgen.SessionsRevokeForUserParams{UserID: uid, RevokeReason: ptr("password reset")}); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "user.password_reset", ResourceType: "user", ResourceID: uid.String()})
	})
	s.dropSessions(ctx, revoked)
	return err
}

func parseUserID(id string) (uuid.UUID, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, hospital.Errorf(hospital.ENOTFOUND, "No user has this id.")
	}
	return uid, nil
}

func notFoundAs(err error, msg string) error {
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return hospital.Errorf(hospital.ENOTFOUND, "%s", msg)
	}
	return err
}

func validUsername(s string) bool {
	if len(s) < 3 || len(s) > 64 {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '.' || c == '_' || c == '-'))
		if !ok {
			return false
		}
	}
	return true
}

func sortStrings(s []string) { sort.Strings(s) }

// EnrolMFA starts multi-factor enrolment for the caller: a new TOTP secret
// is kept (encrypted) as pending until ConfirmMFA proves the app has it.
// Returns ECONFLICT when MFA is already on.
func (s *Service) EnrolMFA(ctx context.Context) (MFAEnrolment, error) {
	a, err := hospital.Require(ctx, "")
	if err != nil {
		return MFAEnrolment{}, err
	}
	uid, _ := uuid.Parse(a.UserID)
	row, err := s.db.Queries().UserGet(ctx, uid)
	if err != nil {
		return MFAEnrolment{}, postgres.Translate(err)
	}
	if row.MfaEnabledAt != nil {
		return MFAEnrolment{}, hospital.Errorf(hospital.ECONFLICT, "Multi-factor authentication is already on.")
	}
	enrol, raw, err := newTOTPKey(s.set.MFAIssuer, row.Username)
	if err != nil {
		return MFAEnrolment{}, err
	}
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if err := q.UserMFAPending(ctx, dbgen.UserMFAPendingParams{ID: uid, MfaPendingEnc: s.mfa.seal(raw, a.UserID)}); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "user.mfa_enrol_start", ResourceType: "user", ResourceID: a.UserID})
	})
	return enrol, err
}

// ConfirmMFA turns MFA on when code matches the pending secret, marks the
// current session as verified, and returns ten recovery codes (shown once).
// Returns EINVALID for a wrong code, ECONFLICT when no enrolment is pending.
func (s *Service) ConfirmMFA(ctx context.Context, in MFAConfirm) (RecoveryCodes, error) {
	a, err := hospital.Require(ctx, "")
	if err != nil {
		return RecoveryCodes{}, err
	}
	uid, _ := uuid.Parse(a.UserID)
	sid, _ := uuid.Parse(a.SessionID)
	row, err := s.db.Queries().UserGet(ctx, uid)
	if err != nil {
		return RecoveryCodes{}, postgres.Translate(err)
	}
	if row.MfaPendingEnc == nil {
		return RecoveryCodes{}, hospital.Errorf(hospital.ECONFLICT, "Start the enrolment first.")
	}
	secret, err := s.mfa.open(row.MfaPendingEnc, a.UserID)
	if err != nil {
		return RecoveryCodes{}, err
	}
	step := matchTOTP(secret, in.Code, s.now())
	if step < 0 {
		return RecoveryCodes{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"code": "is not the current code from your authenticator app"}}
	}
	codes, hashes := newRecoveryCodes(10)
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if err := q.UserMFAEnable(ctx, dbgen.UserMFAEnableParams{ID: uid, MfaLastStep: step}); err != nil {
			return err
		}
		if err := q.RecoveryCodesClear(ctx, uid); err != nil {
			return err
		}
		for _, h := range hashes {
			if err := q.RecoveryCodeAdd(ctx, dbgen.RecoveryCodeAddParams{UserID: uid, CodeHash: h}); err != nil {
				return err
			}
		}
		if err := q.SessionMarkMFA(ctx, sid); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "user.mfa_enable", ResourceType: "user", ResourceID: a.UserID})
	})
	if err != nil {
		return RecoveryCodes{}, err
	}
	s.cache.Delete(ctx, sessionKey(sid))
	return RecoveryCodes{Codes: codes}, nil
}

// DisableMFA turns MFA off for the caller after checking the password.
// Returns EFORBIDDEN for roles that must use MFA.
func (s *Service) DisableMFA(ctx context.Context, in MFADisable) error {
	a, err := hospital.Require(ctx, "")
	if err != nil {
		return err
	}
	if MFARequired[a.Role] {
		return hospital.Errorf(hospital.EFORBIDDEN, "Your role must use multi-factor authentication.")
	}
	uid, _ := uuid.Parse(a.UserID)
	row, err := s.db.Queries().UserGet(ctx, uid)
	if err != nil {
		return postgres.Translate(err)
	}
	if ok, err := CheckPassword(ctx, row.PasswordHash, in.Password); err != nil || !ok {
		if hospital.ErrorCode(err) == hospital.EUNAVAILABLE {
			return err
		}
		return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"password": "is not your current password"}}
	}
	return s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if err := q.UserMFADisable(ctx, uid); err != nil {
			return err
		}
		if err := q.RecoveryCodesClear(ctx, uid); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "user.mfa_disable", ResourceType: "user", ResourceID: a.UserID})
	})
}

// ResetMFA turns a user's MFA off (lost phone) and ends their sessions;
// they enrol again at the next sign-in. Needs user.admin.
func (s *Service) ResetMFA(ctx context.Context, id string) error {
	if _, err := hospital.Require(ctx, PermUserAdmin); err != nil {
		return err
	}
	uid, err := parseUserID(id)
	if err != nil {
		return err
	}
	var revoked []uuid.UUID
	_, err = idempotency.Do(ctx, s.db, &struct{}{}, func(q *dbgen.Queries) error {
		if _, err := q.UserGet(ctx, uid); err != nil {
			return err
		}
		if err := q.UserMFADisable(ctx, uid); err != nil {
			return err
		}
		if err := q.RecoveryCodesClear(ctx, uid); err != nil {
			return err
		}
		if revoked, err = q.SessionsRevokeForUser(ctx, dbgen.SessionsRevokeForUserParams{UserID: uid, RevokeReason: ptr("MFA reset")}); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "user.mfa_reset", ResourceType: "user", ResourceID: uid.String()})
	})
	s.dropSessions(ctx, revoked)
	return notFoundAs(err, "No user has this id.")
}
