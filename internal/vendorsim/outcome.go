package vendorsim

import (
	"strings"
	"unicode"
)

// Outcomes are decided by the input, never at random, so tests can pick them:
//
//   - a finder input (any name, company, LinkedIn URL or email field) containing "nobody",
//     any case → nothing found (Enrow qualification "invalid" / "not_found", eCore
//     status "not_found"); otherwise found, with an address built from the input;
//   - a verified address whose local part starts with "invalid" or "bounce" → Enrow
//     "invalid"; eCore validation: local part starting "invalid" → Invalid, "unknown" or
//     "catchall" → Unknown, "error" → Error, otherwise Valid;
//   - a bulk or job input containing "failjob" (a finder name, or an address whose local
//     part is "failjob") → the whole batch or job fails.
const (
	wordNobody  = "nobody"
	wordFailJob = "failjob"
)

// hasWord reports whether any of vals contains word, ignoring case.
func hasWord(word string, vals ...string) bool {
	for _, v := range vals {
		if strings.Contains(strings.ToLower(v), word) {
			return true
		}
	}
	return false
}

// splitFullname returns the first and last words of a full name, as written.
func splitFullname(s string) (first, last string) {
	f := strings.Fields(s)
	switch len(f) {
	case 0:
		return "", ""
	case 1:
		return f[0], ""
	}
	return f[0], f[len(f)-1]
}

// slug keeps the lowercase letters and digits of s.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// address builds first.last@domain (first@domain with one name) in lowercase.
func address(first, last, domain string) string {
	local := slug(first)
	if l := slug(last); l != "" {
		if local != "" {
			local += "."
		}
		local += l
	}
	if local == "" {
		local = "contact"
	}
	return local + "@" + domain
}

// cleanDomain turns any URL-ish company domain ("https://www.Acme.com/about") into a bare
// host ("acme.com"). vendors/enrow.md §2.1: any URL-ish form is accepted.
func cleanDomain(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, ":"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimPrefix(s, "www.")
	if s == "" {
		s = "example.com"
	}
	return s
}

// nameDomain turns a company name into a domain: "Dunder Mifflin" → "dundermifflin.com".
func nameDomain(company string) string {
	s := slug(company)
	if s == "" {
		s = "example"
	}
	return s + ".com"
}

// companyDomain prefers the domain, else derives one from the name.
func companyDomain(domain, name string) string {
	if strings.TrimSpace(domain) != "" {
		return cleanDomain(domain)
	}
	return nameDomain(name)
}

// linkedinAddress builds an address from a LinkedIn profile slug
// ("https://www.linkedin.com/in/tim-cook-42" → "tim.cook@example.com").
func linkedinAddress(u string) string {
	s := strings.TrimRight(u, "/")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		s = s[i+1:]
	}
	var words []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' }) {
		if slug(w) != "" && !isDigits(w) {
			words = append(words, w)
		}
	}
	switch len(words) {
	case 0:
		return address("", "", "example.com")
	case 1:
		return address(words[0], "", "example.com")
	}
	return address(words[0], words[len(words)-1], "example.com")
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// validEmail is the simulators' format check: one "@", a non-empty local part, a dotted
// domain, no spaces.
func validEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.ContainsAny(s, " \t\r\n") || strings.Contains(domain, "@") {
		return false
	}
	i := strings.Index(domain, ".")
	return i > 0 && i < len(domain)-1
}

// localOf returns the lowercase local part of an address.
func localOf(email string) string {
	local, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(email)), "@")
	return local
}
