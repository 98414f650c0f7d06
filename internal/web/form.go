package web

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field is one labelled form control with its hint and error, rendered by
// the "field" partial. Error messages are tied to the control with
// aria-describedby and aria-invalid, and repeated in the error summary.
type Field struct {
	Name         string
	Label        string
	Hint         string
	Type         string // input type; ignored when Options is set
	Value        string
	Error        string
	Autocomplete string
	InputMode    string
	// Width is a CSS modifier: "short", "medium" or "" (full).
	Width     string
	MaxLength int
	Optional  bool
	// Options make the field a <select>, or with Checkboxes a group of
	// check boxes of which several may be chosen (easier to use than a
	// multiple select, and it needs no JavaScript either).
	Options    []Option
	Checkboxes bool
	// Rows makes the field a <textarea> of that many rows.
	Rows int
}

// ID is the control's id; error summary links point at it.
func (f Field) ID() string { return "f-" + f.Name }

// DescribedBy lists the ids of the hint and the error, for aria-describedby.
func (f Field) DescribedBy() string {
	var ids []string
	if f.Hint != "" {
		ids = append(ids, f.ID()+"-hint")
	}
	if f.Error != "" {
		ids = append(ids, f.ID()+"-error")
	}
	return strings.Join(ids, " ")
}

// Option is one choice of a select.
type Option struct {
	Value, Label string
	Selected     bool
}

// SummaryItem is one line of the error summary at the top of a form
// (the GOV.UK pattern): the message, linking to its field when it has one.
type SummaryItem struct {
	Text string
	Href string
}

// fieldMessage makes an API field message ("is required") a sentence that
// names the field ("Family name is required"). Messages that already are
// sentences are kept.
func fieldMessage(label, msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return ""
	}
	if r, _ := utf8.DecodeRuneInString(msg); unicode.IsUpper(r) {
		return msg
	}
	return label + " " + msg
}
