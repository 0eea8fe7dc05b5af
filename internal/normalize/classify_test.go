package normalize

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		vendor, method, path string
		want                 Operation
	}{
		{Enrow, "POST", "/email/find/single", OpEmailFind},
		{Enrow, "GET", "/email/find/single/", OpEmailFind},
		{Enrow, "POST", "/email/find/bulk", OpEmailFindBulk},
		{Enrow, "POST", "/email/verify/single", OpEmailVerify},
		{Enrow, "GET", "/email/verify/bulk", OpEmailVerifyBulk},
		{Enrow, "POST", "/phone/single", OpPhoneFind},
		{Enrow, "GET", "/phone/bulk", OpPhoneFindBulk},
		{Enrow, "GET", "/account/info", OpAccount},
		{Enrow, "GET", "/account", OpOther},
		{Enrow, "GET", "/Email/Find/Single", OpOther}, // paths match case-sensitively
		{Enrow, "GET", "/email/find/single/extra", OpOther},
		{Enrow, "POST", "/reverse-email/single", OpOther},
		{Enrow, "GET", "", OpOther},
		{Enrow, "GET", "/", OpOther},
		{Enrow, "GET", "email/find/single", OpEmailFind},
		{Enrow, "POST", "/external/email/enrichment/", OpOther}, // an eCore path
		{ECore, "POST", "/external/email/enrichment/", OpEmailFind},
		{ECore, "POST", "/external/email/enrichment", OpEmailFind},
		{ECore, "POST", "/external/phone/enrichment/", OpPhoneFind},
		{ECore, "POST", "/email-validation/jobs/upload/", OpEmailVerifyBulk},
		{ECore, "GET", "/email-validation/jobs/", OpEmailVerifyBulk},
		{ECore, "GET", "/email-validation/jobs/42/", OpEmailVerifyBulk},
		{ECore, "GET", "/email-validation/jobs/42/records/", OpEmailVerifyBulk},
		{ECore, "GET", "/email-validation/jobs/42/download/", OpEmailVerifyBulk},
		{ECore, "GET", "/email-validation/jobsx/", OpOther},
		{ECore, "GET", "/external/search/", OpSearch},
		{ECore, "POST", "/external/unlock/", OpUnlock},
		{ECore, "POST", "/enrichment/submit/", OpEnrichment},
		{ECore, "GET", "/enrichment/status/3f1c/", OpEnrichment},
		{ECore, "GET", "/enrichment/status/", OpEnrichment},
		{ECore, "GET", "/enrichment/result/3f1c/", OpEnrichment},
		{ECore, "POST", "/enrichment-control/", OpEnrichment},
		{ECore, "POST", "/enrichment-controls/", OpOther},
		{ECore, "GET", "/External/Search/", OpOther},
		{ECore, "GET", "/email/find/single", OpOther}, // an Enrow path
		{"acme", "GET", "/email/find/single", OpOther},
	}
	for _, tc := range tests {
		t.Run(tc.vendor+" "+tc.method+" "+tc.path, func(t *testing.T) {
			if got := Classify(tc.vendor, tc.method, tc.path); got != tc.want {
				t.Errorf("Classify(%q, %q, %q) = %q, want %q", tc.vendor, tc.method, tc.path, got, tc.want)
			}
		})
	}
}

func TestIsResultOperation(t *testing.T) {
	want := map[Operation]bool{
		OpEmailFind: true, OpEmailFindBulk: true, OpEmailVerify: true, OpEmailVerifyBulk: true,
		OpPhoneFind: true, OpPhoneFindBulk: true,
	}
	for _, op := range Operations {
		if got := IsResultOperation(op); got != want[op] {
			t.Errorf("IsResultOperation(%q) = %v, want %v", op, got, want[op])
		}
	}
}
