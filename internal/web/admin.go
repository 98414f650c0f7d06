package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// userPageSize is the number of rows of one page of the user list.
const userPageSize = 25

func (s *Server) handleAdminHome(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
	return nil
}

// UserListPage is the administration's list of user accounts.
type UserListPage struct {
	Layout
	Tab           string
	Q             string
	Role          string
	Status        string
	RoleOptions   []Option
	StatusOptions []Option
	Users         []UserRow
	Filtered      bool
	NextURL       string
	FirstURL      string
	Error         string
}

// UserRow is one user of the list.
type UserRow struct {
	identity.User
	RoleName  string
	LastLogin string
	// MFA is the multi-factor state in words; MFAWarn marks a user whose
	// role requires it and who has not enrolled.
	MFA     string
	MFAWarn bool
}

func newUserRow(u identity.User, loc *time.Location) UserRow {
	row := UserRow{User: u, RoleName: roleName(u.Role), MFA: "Off"}
	if u.LastLoginAt != nil {
		row.LastLogin = formatDateTime(*u.LastLoginAt, loc)
	}
	switch {
	case u.MFAEnabled:
		row.MFA = "On"
	case u.MFARequired:
		row.MFA, row.MFAWarn = "Required, not set up", true
	}
	return row
}

// userStatuses are the values of the list's status filter.
var userStatuses = []struct{ value, label string }{{"", "Active and disabled"}, {"active", "Active"}, {"disabled", "Disabled"}}

func usersURL(q, role, status, cursor string) string {
	v := url.Values{}
	for k, val := range map[string]string{"q": q, "role": role, "status": status, "cursor": cursor} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if len(v) == 0 {
		return "/admin/users"
	}
	return "/admin/users?" + v.Encode()
}

// roleOptions lists the roles for a select, the first being blank.
func roleOptions(roles []identity.RoleInfo, selected, blank string) []Option {
	opts := []Option{{Value: "", Label: blank}}
	for _, ri := range roles {
		opts = append(opts, Option{Value: ri.Role, Label: orDefault(ri.Name, roleName(ri.Role)), Selected: ri.Role == selected})
	}
	return opts
}

// localRoles is the role list as this binary knows it, for the list's
// filter (the forms ask the backend).
func localRoles() []identity.RoleInfo {
	var out []identity.RoleInfo
	for _, r := range identity.Roles() {
		out = append(out, identity.RoleInfo{Role: r, Name: roleName(r)})
	}
	slices.SortFunc(out, func(a, b identity.RoleInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *Server) handleUserList(w http.ResponseWriter, r *http.Request) error {
	qs := r.URL.Query()
	p := &UserListPage{
		Layout: Layout{Title: "Users", Area: "Administration", Nav: "admin"},
		Tab:    "users",
		Q:      strings.ToLower(strings.TrimSpace(qs.Get("q"))),
		Role:   qs.Get("role"),
		Status: qs.Get("status"),
	}
	if utf8.RuneCountInString(p.Q) > 64 {
		p.Q = string([]rune(p.Q)[:64])
	}
	if _, ok := identity.RoleNames[p.Role]; !ok {
		p.Role = ""
	}
	var active *bool
	switch p.Status {
	case "active", "disabled":
		b := p.Status == "active"
		active = &b
	default:
		p.Status = ""
	}
	p.Filtered = p.Q != "" || p.Role != "" || p.Status != ""
	p.RoleOptions = roleOptions(localRoles(), p.Role, "All roles")
	for _, st := range userStatuses {
		p.StatusOptions = append(p.StatusOptions, Option{Value: st.value, Label: st.label, Selected: st.value == p.Status})
	}
	cursor := qs.Get("cursor")
	if cursor != "" {
		p.FirstURL = usersURL(p.Q, p.Role, p.Status, "")
	}
	var next string
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		res, err := api.Users(ctx, client.UserQuery{Q: p.Q, Role: p.Role, Active: active, Cursor: cursor, Limit: userPageSize})
		for _, u := range res.Items {
			p.Users = append(p.Users, newUserRow(u, s.loc))
		}
		next = res.NextCursor
		return err
	})
	if client.StatusOf(err) == http.StatusBadRequest {
		if cursor != "" {
			s.setFlash(w, Flash{Kind: "error", Message: "That page of results is no longer available; here is the first page."})
			http.Redirect(w, r, usersURL(p.Q, p.Role, p.Status, ""), http.StatusSeeOther)
			return nil
		}
		p.Error = "The search could not be run. Check what you entered and try again."
		return s.render(w, r, http.StatusBadRequest, "admin_users", p)
	}
	if err != nil {
		return err
	}
	if next != "" {
		p.NextURL = usersURL(p.Q, p.Role, p.Status, next)
	}
	return s.render(w, r, http.StatusOK, "admin_users", p)
}

// assignmentChoices are what the user forms offer: roles, departments and
// wards, as the backend lists them.
type assignmentChoices struct {
	roles []identity.RoleInfo
	depts []ward.Department
	wards []ward.Ward
}

func (s *Server) loadChoices(w http.ResponseWriter, r *http.Request) (assignmentChoices, error) {
	var c assignmentChoices
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		if c.roles, err = api.Roles(ctx); err != nil {
			return err
		}
		if c.depts, err = api.Departments(ctx); err != nil {
			return err
		}
		c.wards, err = api.Wards(ctx)
		return err
	})
	return c, err
}

// assignmentFields are the fields shared by the create and edit forms.
func (c assignmentChoices) fields(displayName, role, dept string, wards []string) []Field {
	deptOpts := []Option{{Value: "", Label: "No department"}}
	for _, d := range c.depts {
		deptOpts = append(deptOpts, Option{Value: d.ID, Label: d.Name, Selected: d.ID == dept})
	}
	var wardOpts []Option
	for _, wd := range c.wards {
		label := wd.Name
		if wd.DepartmentName != "" && !strings.Contains(wd.Name, wd.DepartmentName) {
			label += " (" + wd.DepartmentName + ")"
		}
		wardOpts = append(wardOpts, Option{Value: wd.ID, Label: label, Selected: slices.Contains(wards, wd.ID)})
	}
	return []Field{
		{Name: "display_name", Label: "Full name", Hint: "As colleagues know them; shown in the header and the audit trail.",
			Type: "text", Value: displayName, Autocomplete: "off", MaxLength: 200},
		{Name: "role", Label: "Role", Hint: "The role decides what the user may do; see Roles for each role's permissions.",
			Options: roleOptions(c.roles, role, "Select a role"), Width: "medium"},
		{Name: "department_id", Label: "Department", Options: deptOpts, Width: "medium", Optional: true},
		{Name: "ward_ids", Label: "Wards", Hint: "Physicians and nurses see the patients of their wards and department.",
			Options: wardOpts, Checkboxes: true, Optional: true},
	}
}

func withErrors(fields []Field, errs map[string]string) []Field {
	for i := range fields {
		fields[i].Error = fieldMessage(fields[i].Label, errs[fields[i].Name])
	}
	return fields
}

// UserNewPage is the form to add a user.
type UserNewPage struct {
	Layout
	Tab     string
	Summary []SummaryItem
	Fields  []Field
}

func newUserNewPage(c assignmentChoices, in identity.NewUser, errs map[string]string) *UserNewPage {
	fields := []Field{{Name: "username", Label: "Username",
		Hint: "3 to 64 characters: lowercase letters, digits, dots, underscores and hyphens, for example j.smith.",
		Type: "text", Value: in.Username, Autocomplete: "off", Width: "medium", MaxLength: 64}}
	fields = append(fields, c.fields(in.DisplayName, in.Role, in.DepartmentID, in.WardIDs)...)
	fields = append(fields, Field{Name: "password", Label: "Initial password", Type: "password", Autocomplete: "new-password",
		MaxLength: 1024, Hint: passwordHint + " Give it to the user in person; they can change it under My account."})
	fields = withErrors(fields, errs)
	p := &UserNewPage{Layout: Layout{Title: "Add a user", Area: "Administration", Nav: "admin"}, Tab: "users",
		Fields: fields, Summary: summaryFor(fields, errs)}
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return p
}

func (s *Server) handleUserNew(w http.ResponseWriter, r *http.Request) error {
	c, err := s.loadChoices(w, r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_user_new", newUserNewPage(c, identity.NewUser{}, nil))
}

func (s *Server) handleUserCreate(w http.ResponseWriter, r *http.Request) error {
	f := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	in := identity.NewUser{
		Username:     strings.ToLower(f("username")),
		DisplayName:  f("display_name"),
		Role:         f("role"),
		DepartmentID: f("department_id"),
		WardIDs:      r.PostForm["ward_ids"],
		Password:     r.PostFormValue("password"),
	}
	if in.WardIDs == nil {
		in.WardIDs = []string{}
	}
	errs := map[string]string{}
	if in.Username == "" {
		errs["username"] = "Enter a username"
	}
	if in.DisplayName == "" {
		errs["display_name"] = "Enter the user's full name"
	}
	if in.Role == "" {
		errs["role"] = "Select a role"
	}
	if in.Password == "" {
		errs["password"] = "Enter an initial password"
	}
	var created identity.User
	var err error
	if len(errs) == 0 {
		err = s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			created, err = api.CreateUser(ctx, in)
			return err
		})
		var ae *client.Error
		if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict) {
			errs = ae.Errors
			if len(errs) == 0 {
				errs = map[string]string{"": orDefault(ae.Detail, "The user could not be added.")}
			}
		} else if err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		c, cerr := s.loadChoices(w, r)
		if cerr != nil {
			return cerr
		}
		in.Password = "" // never sent back to the browser
		status := http.StatusBadRequest
		if client.StatusOf(err) == http.StatusConflict {
			status = http.StatusConflict
		}
		return s.render(w, r, status, "admin_user_new", newUserNewPage(c, in, errs))
	}
	s.setFlash(w, Flash{Kind: "success", Message: "User " + created.Username + " added."})
	http.Redirect(w, r, "/admin/users/"+url.PathEscape(created.ID), http.StatusSeeOther)
	return nil
}

// UserShowPage is one user: their details, the form to change their role,
// department and wards, a password reset, and the access actions.
type UserShowPage struct {
	Layout
	Tab string
	// Account is the user shown (User is the signed-in one, in Layout).
	Account         identity.User
	RoleName        string
	DepartmentName  string
	WardNames       []string
	LastLogin       string
	PasswordChanged string
	Created         string
	// Self: the administrator is looking at their own account, which they
	// cannot disable (the backend refuses too).
	Self           bool
	Summary        []SummaryItem
	Fields         []Field
	Version        int
	PasswordFields []Field
}

func (s *Server) loadUser(w http.ResponseWriter, r *http.Request, id string) (identity.User, error) {
	var u identity.User
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		u, err = api.User(ctx, id)
		return err
	})
	if st := client.StatusOf(err); st == http.StatusNotFound || st == http.StatusBadRequest {
		return u, errNotFound
	}
	return u, err
}

func passwordResetFields(errs map[string]string) []Field {
	return withErrors([]Field{
		{Name: "new_password", Label: "New password", Hint: passwordHint, Type: "password", Autocomplete: "new-password", MaxLength: 1024},
		{Name: "confirm_password", Label: "Confirm new password", Type: "password", Autocomplete: "new-password", MaxLength: 1024},
	}, errs)
}

// newUserShowPage builds the page of u. edit holds what was typed into the
// edit form (nil: u's saved values); editErrs and pwErrs are the errors of
// the two forms.
func (s *Server) newUserShowPage(r *http.Request, c assignmentChoices, u identity.User, edit *identity.UserUpdate, editErrs, pwErrs map[string]string) *UserShowPage {
	p := &UserShowPage{
		Layout:          Layout{Title: "User " + u.Username, Area: "Administration", Nav: "admin"},
		Tab:             "users",
		Account:         u,
		RoleName:        roleName(u.Role),
		PasswordChanged: formatDateTime(u.PasswordChangedAt, s.loc),
		Created:         formatDateTime(u.CreatedAt, s.loc),
		Self:            sessionFrom(r.Context()).UserID == u.ID,
		Version:         u.Version,
	}
	if u.LastLoginAt != nil {
		p.LastLogin = formatDateTime(*u.LastLoginAt, s.loc)
	}
	for _, d := range c.depts {
		if d.ID == u.DepartmentID {
			p.DepartmentName = d.Name
		}
	}
	for _, wd := range c.wards {
		if slices.Contains(u.WardIDs, wd.ID) {
			p.WardNames = append(p.WardNames, wd.Name)
		}
	}
	in := identity.UserUpdate{DisplayName: u.DisplayName, Role: u.Role, DepartmentID: u.DepartmentID, WardIDs: u.WardIDs}
	if edit != nil {
		in = *edit
	}
	p.Fields = withErrors(c.fields(in.DisplayName, in.Role, in.DepartmentID, in.WardIDs), editErrs)
	p.PasswordFields = passwordResetFields(pwErrs)
	p.Summary = append(summaryFor(p.Fields, editErrs), summaryFor(p.PasswordFields, pwErrs)...)
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return p
}

func (s *Server) handleUserShow(w http.ResponseWriter, r *http.Request) error {
	u, err := s.loadUser(w, r, r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := s.loadChoices(w, r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_user_show", s.newUserShowPage(r, c, u, nil, nil, nil))
}

// handleUserUpdate saves the edit form. The form carries the version it
// was made from; the backend refuses a change to a user someone else
// changed meanwhile (412), and the page then shows the current values.
func (s *Server) handleUserUpdate(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	f := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	in := identity.UserUpdate{DisplayName: f("display_name"), Role: f("role"), DepartmentID: f("department_id"),
		WardIDs: r.PostForm["ward_ids"]}
	if in.WardIDs == nil {
		in.WardIDs = []string{}
	}
	version, err := strconv.Atoi(f("version"))
	if err != nil {
		return statusError(http.StatusBadRequest)
	}
	errs := map[string]string{}
	if in.DisplayName == "" {
		errs["display_name"] = "Enter the user's full name"
	}
	if in.Role == "" {
		errs["role"] = "Select a role"
	}
	status := http.StatusBadRequest
	if len(errs) == 0 {
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			_, err := api.UpdateUser(ctx, id, version, in)
			return err
		})
		var ae *client.Error
		switch {
		case err == nil:
			s.setFlash(w, Flash{Kind: "success", Message: "Changes saved. The user's sessions follow the change within seconds."})
			http.Redirect(w, r, "/admin/users/"+url.PathEscape(id), http.StatusSeeOther)
			return nil
		case errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed:
			// Show what is saved now, so the administrator redoes their
			// change on top of the other one rather than over it.
			u, err := s.loadUser(w, r, id)
			if err != nil {
				return err
			}
			c, err := s.loadChoices(w, r)
			if err != nil {
				return err
			}
			p := s.newUserShowPage(r, c, u, nil, nil, nil)
			p.Summary = []SummaryItem{{Text: "Someone else changed this user while you were editing, so your changes were not saved. " +
				"The form now shows the current details: make your changes again.", Href: "#edit-title"}}
			p.Title = "Error: " + p.Title
			return s.render(w, r, http.StatusPreconditionFailed, "admin_user_show", p)
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return errNotFound
		case errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict):
			status = ae.Status
			errs = ae.Errors
			if len(errs) == 0 {
				errs = map[string]string{"": orDefault(ae.Detail, "The changes could not be saved.")}
			}
		default:
			return err
		}
	}
	u, err := s.loadUser(w, r, id)
	if err != nil {
		return err
	}
	c, err := s.loadChoices(w, r)
	if err != nil {
		return err
	}
	p := s.newUserShowPage(r, c, u, &in, errs, nil)
	p.Version = version // keep the version the edit started from
	return s.render(w, r, status, "admin_user_show", p)
}

func (s *Server) handleUserPasswordReset(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	password, confirm := r.PostFormValue("new_password"), r.PostFormValue("confirm_password")
	errs := map[string]string{}
	switch {
	case password == "":
		errs["new_password"] = "Enter a new password"
	case confirm != password:
		errs["confirm_password"] = "The passwords do not match; type the same password twice"
	}
	if len(errs) == 0 {
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error { return api.ResetUserPassword(ctx, id, password) })
		var ae *client.Error
		switch {
		case err == nil:
			s.setFlash(w, Flash{Kind: "success", Message: "Password reset. The user was signed out everywhere; give them the new password in person."})
			http.Redirect(w, r, "/admin/users/"+url.PathEscape(id), http.StatusSeeOther)
			return nil
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return errNotFound
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
			errs = ae.Errors
			if len(errs) == 0 {
				errs = map[string]string{"new_password": orDefault(ae.Detail, "is not accepted")}
			}
		default:
			return err
		}
	}
	u, err := s.loadUser(w, r, id)
	if err != nil {
		return err
	}
	c, err := s.loadChoices(w, r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusBadRequest, "admin_user_show", s.newUserShowPage(r, c, u, nil, nil, errs))
}

func (s *Server) handleUserEnable(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var u identity.User
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		u, err = api.SetUserActive(ctx, id, true)
		return err
	})
	if client.StatusOf(err) == http.StatusNotFound {
		return errNotFound
	}
	if err != nil {
		return err
	}
	s.setFlash(w, Flash{Kind: "success", Message: "User " + u.Username + " can sign in again."})
	http.Redirect(w, r, "/admin/users/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

// userAction is an action on a user that asks for confirmation first.
type userAction struct {
	// Key is the last path segment: /admin/users/{id}/<Key>.
	Key     string
	Heading string // with the username for %s
	Explain string
	Button  string
	run     func(ctx context.Context, api *client.Client, id string) (string, error)
}

// userActions are the destructive actions on a user.
var userActions = []userAction{
	{
		Key:     "disable",
		Heading: "Disable %s?",
		Explain: "They are signed out everywhere within seconds and cannot sign in until an administrator enables the account again. " +
			"Their records and audit history are kept.",
		Button: "Disable user",
		run: func(ctx context.Context, api *client.Client, id string) (string, error) {
			u, err := api.SetUserActive(ctx, id, false)
			return "User " + u.Username + " is disabled and was signed out everywhere.", err
		},
	},
	{
		Key:     "end-sessions",
		Heading: "End all sessions of %s?",
		Explain: "They are signed out on every computer and phone and have to sign in again. Use this when a device was lost " +
			"or someone may know their password.",
		Button: "End all sessions",
		run: func(ctx context.Context, api *client.Client, id string) (string, error) {
			n, err := api.RevokeUserSessions(ctx, id)
			return "Ended " + plural(n, "session") + ".", err
		},
	},
	{
		Key:     "reset-mfa",
		Heading: "Reset multi-factor authentication of %s?",
		Explain: "Their authenticator app and recovery codes stop working and they are signed out everywhere. They set up " +
			"multi-factor authentication again at their next sign-in. Do this only after making sure who is asking, " +
			"for example in person with their staff card.",
		Button: "Reset multi-factor authentication",
		run: func(ctx context.Context, api *client.Client, id string) (string, error) {
			return "Multi-factor authentication was reset; the user sets it up again at their next sign-in.", api.ResetUserMFA(ctx, id)
		},
	},
}

// UserConfirmPage asks before a destructive action on a user.
type UserConfirmPage struct {
	Layout
	Tab     string
	Account identity.User
	Heading string
	Explain string
	Button  string
	Action  string
	Cancel  string
}

func (s *Server) handleUserActionConfirm(a userAction) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		u, err := s.loadUser(w, r, r.PathValue("id"))
		if err != nil {
			return err
		}
		heading := fmt.Sprintf(a.Heading, u.Username)
		userURL := "/admin/users/" + url.PathEscape(u.ID)
		return s.render(w, r, http.StatusOK, "admin_user_confirm", &UserConfirmPage{
			Layout:  Layout{Title: heading, Area: "Administration", Nav: "admin"},
			Tab:     "users",
			Account: u,
			Heading: heading,
			Explain: a.Explain,
			Button:  a.Button,
			Action:  userURL + "/" + a.Key,
			Cancel:  userURL,
		})
	}
}

func (s *Server) handleUserAction(a userAction) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		userURL := "/admin/users/" + url.PathEscape(id)
		if r.PostFormValue("confirm") != "yes" {
			// Not from the confirmation page: ask first.
			http.Redirect(w, r, userURL+"/"+a.Key, http.StatusSeeOther)
			return nil
		}
		var msg string
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			msg, err = a.run(ctx, api, id)
			return err
		})
		var ae *client.Error
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return errNotFound
		case errors.As(err, &ae) && ae.Status == http.StatusConflict:
			s.setFlash(w, Flash{Kind: "error", Message: orDefault(ae.Detail, "This cannot be done to this user.")})
		case err != nil:
			return err
		default:
			s.setFlash(w, Flash{Kind: "success", Message: msg})
		}
		http.Redirect(w, r, userURL, http.StatusSeeOther)
		return nil
	}
}

// RolesPage shows every role's permissions as a matrix, for a hospital to
// review who may do what.
type RolesPage struct {
	Layout
	Tab   string
	Roles []identity.RoleInfo
	Rows  []PermissionRow
}

// PermissionRow is one permission and, per role in page order, whether
// the role holds it.
type PermissionRow struct {
	Perm  string
	Label string
	Has   []bool
}

func (s *Server) handleRoleList(w http.ResponseWriter, r *http.Request) error {
	var roles []identity.RoleInfo
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		roles, err = api.Roles(ctx)
		return err
	})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var perms []string
	for _, ri := range roles {
		for _, p := range ri.Permissions {
			if !seen[p] {
				seen[p] = true
				perms = append(perms, p)
			}
		}
	}
	slices.Sort(perms)
	p := &RolesPage{Layout: Layout{Title: "Roles and permissions", Area: "Administration", Nav: "admin"}, Tab: "roles", Roles: roles}
	for _, perm := range perms {
		row := PermissionRow{Perm: perm, Label: permissionLabel(perm)}
		for _, ri := range roles {
			row.Has = append(row.Has, slices.Contains(ri.Permissions, perm))
		}
		p.Rows = append(p.Rows, row)
	}
	return s.render(w, r, http.StatusOK, "admin_roles", p)
}
