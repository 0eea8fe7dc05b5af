package normalize

import "strings"

// enrowOps maps Enrow's documented paths (vendors/enrow.md §2) to operations.
var enrowOps = map[string]Operation{
	"/email/find/single":   OpEmailFind,
	"/email/find/bulk":     OpEmailFindBulk,
	"/email/verify/single": OpEmailVerify,
	"/email/verify/bulk":   OpEmailVerifyBulk,
	"/phone/single":        OpPhoneFind,
	"/phone/bulk":          OpPhoneFindBulk,
	"/account/info":        OpAccount,
}

// Classify says which operation a call is, from its vendor and vendor-relative path
// (e.g. "/email/find/single"; query not included). Paths match case-sensitively; trailing
// slashes do not matter. Unknown vendors and paths are OpOther. The method is accepted for
// routes that would differ by method; none of the documented ones do: a GET and a POST on
// the same path are the same operation, told apart when the answer is read.
func Classify(vendor, method, path string) Operation {
	p := cleanPath(path)
	switch vendor {
	case Enrow:
		if op, ok := enrowOps[p]; ok {
			return op
		}
	case ECore:
		return classifyECore(p)
	}
	return OpOther
}

// classifyECore classifies an eCore path (vendors/ecore.md §4-§7).
func classifyECore(p string) Operation {
	switch {
	case p == "/external/email/enrichment":
		return OpEmailFind
	case p == "/external/phone/enrichment":
		return OpPhoneFind
	case under(p, ecoreJobsPath):
		return OpEmailVerifyBulk
	case p == "/external/search":
		return OpSearch
	case p == "/external/unlock":
		return OpUnlock
	case under(p, "/enrichment"), p == "/enrichment-control":
		return OpEnrichment
	}
	return OpOther
}

// ecoreJobsPath is the root of eCore's email-validation jobs (vendors/ecore.md §6).
const ecoreJobsPath = "/email-validation/jobs"

// IsResultOperation reports whether op fetches or starts a finder or verifier result:
// email.find, email.verify, phone.find and their .bulk forms (the cacheable ones, SPEC 4).
func IsResultOperation(op Operation) bool {
	switch op {
	case OpEmailFind, OpEmailFindBulk, OpEmailVerify, OpEmailVerifyBulk, OpPhoneFind, OpPhoneFindBulk:
		return true
	}
	return false
}

// isBulk reports whether op is one of the .bulk result operations.
func isBulk(op Operation) bool {
	return op == OpEmailFindBulk || op == OpEmailVerifyBulk || op == OpPhoneFindBulk
}

// cleanPath drops trailing slashes and makes sure the path starts with one.
func cleanPath(p string) string {
	p = strings.TrimRight(p, "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// under reports whether the clean path p is root or lies below it.
func under(p, root string) bool {
	return p == root || strings.HasPrefix(p, root+"/")
}

// pathSegments splits what follows root in the clean path p ("/42/records" → [42 records]);
// nil when p is root itself or not below it.
func pathSegments(p, root string) []string {
	if !under(p, root) {
		return nil
	}
	rest := strings.Trim(strings.TrimPrefix(p, root), "/")
	if rest == "" {
		return nil
	}
	return strings.Split(rest, "/")
}
