// Package ward is the facility structure: departments, wards, rooms and
// beds, and the counts of beds by state.
package ward

// Department is a clinical, support or administrative department.
type Department struct {
	ID   string `json:"id"`
	Code string `json:"code"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// BedCounts counts a ward's beds by status.
type BedCounts struct {
	Total        int `json:"total"`
	Available    int `json:"available"`
	Occupied     int `json:"occupied"`
	Reserved     int `json:"reserved"`
	Cleaning     int `json:"cleaning"`
	OutOfService int `json:"out_of_service"`
}

// Ward is a ward with its bed counts.
type Ward struct {
	ID             string    `json:"id"`
	Code           string    `json:"code"`
	Name           string    `json:"name"`
	Specialty      string    `json:"specialty,omitempty"`
	SexRestriction string    `json:"sex_restriction,omitempty"`
	Floor          string    `json:"floor,omitempty"`
	DepartmentID   string    `json:"department_id"`
	DepartmentName string    `json:"department_name"`
	Beds           BedCounts `json:"beds"`
}

// Bed is one bed and its state.
type Bed struct {
	ID       string `json:"id"`
	Code     string `json:"code"`
	RoomID   string `json:"room_id"`
	RoomCode string `json:"room_code"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Version  int    `json:"version"`
}

// WardDetail is a ward with every bed.
type WardDetail struct {
	Ward
	BedList []Bed `json:"bed_list"`
}

// List is a plain list response.
type List[T any] struct {
	Items []T `json:"items"`
}
