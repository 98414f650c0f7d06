package postgres

// For the external tests: the migrations' goose provider on a direct
// connection.
var (
	OpenDirect = openDirect
	Provider   = provider
)
