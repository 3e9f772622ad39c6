package arch

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/callfleet/callfleet/pkg/piopiy"
)

// phoneFields are the CRD fields that hold a phone number.
var phoneFields = regexp.MustCompile(`(?m)^\s*pattern: (\^\[1-9\]\S*)$`)

// TestOnePhoneNumberRule: every phone-number pattern in the CRDs is
// piopiy.NumberPattern, the rule the campaign's contact check, the account
// check and the Piopiy client apply in code, so apply time and run time
// never disagree about a number.
func TestOnePhoneNumberRule(t *testing.T) {
	files, err := filepath.Glob("../../config/crd/bases/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs found: %v", err)
	}
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range phoneFields.FindAllStringSubmatch(string(b), -1) {
			seen++
			if got := strings.Trim(m[1], `'"`); got != piopiy.NumberPattern {
				t.Errorf("%s: phone pattern %s, want piopiy.NumberPattern %s", filepath.Base(f), got, piopiy.NumberPattern)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("found %d phone-number patterns in the CRDs, want the 5 fields that hold numbers", seen)
	}
	re := regexp.MustCompile(piopiy.NumberPattern)
	for _, n := range []string{"919876543210", "1234567", "1234567890123456", "0123456789", "123456", "12345678901234567", "+919876543210", "91987654321a", ""} {
		if got, want := piopiy.ValidNumber(n), re.MatchString(n); got != want {
			t.Errorf("ValidNumber(%q) = %v, the pattern says %v", n, got, want)
		}
	}
}
