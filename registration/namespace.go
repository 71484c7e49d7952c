package registration

// Namespaces are the parts of the Matrix ID space a module claims. Patterns are regular
// expressions over the localpart only (the part between the sigil and the colon); the
// registration anchors them and adds the homeserver domain, so a module never needs to know
// the domain to claim its namespace.
type Namespaces struct {
	// Users are localpart patterns of user IDs, such as "_xmpp_.+".
	Users []Pattern
	// Aliases are localpart patterns of room aliases, such as "_xmpp_.+".
	Aliases []Pattern
}

// Pattern is one namespace entry.
type Pattern struct {
	// Localpart is a Go regular expression matched against the whole localpart.
	Localpart string
	// Exclusive reserves the namespace: nobody else may create users or aliases in it.
	Exclusive bool
}
