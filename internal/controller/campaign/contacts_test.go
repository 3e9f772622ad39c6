package campaign

import (
	"fmt"
	"strings"
	"testing"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

func TestParseCSVReportsBadRowsWithLineNumbers(t *testing.T) {
	csv := strings.Join([]string{
		"number,timezone,first_name", // line 1: header
		"+91 98765 43210,Asia/Kolkata,Asha",
		"12ab,,Bad",               // 3: bad number
		"919876500002,UTC",        // 4: wrong column count
		"",                        // 5: blank, not a contact
		"919876500003,Mars/Base,", // 6: unknown zone
		"919876500004,,",          // 7: fine, no variables
		`"919876500005",,"Ravi, Jr"`,
	}, "\n")
	src, err := parseCSV("list", strings.NewReader(csv), nil)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		number, invalid string
		line            int32
	}
	want := []row{
		{"919876543210", "", 2},
		{"", "number \"12ab\" is not 7 to 16 digits", 3},
		{"", "2 columns, the header has 3", 4},
		{"919876500003", "unknown time zone \"Mars/Base\"", 6},
		{"919876500004", "", 7},
		{"919876500005", "", 8},
	}
	if len(src.contacts) != len(want) {
		t.Fatalf("%d contacts, want %d: %+v", len(src.contacts), len(want), src.contacts)
	}
	for i, w := range want {
		c := &src.contacts[i]
		if c.number != w.number || c.invalid != w.invalid || c.line != w.line {
			t.Errorf("contact %d = {%q %q line %d}, want {%q %q line %d}", i, c.number, c.invalid, c.line, w.number, w.invalid, w.line)
		}
	}
	if z := src.contacts[0].zone; z == nil || z.String() != "Asia/Kolkata" {
		t.Errorf("zone = %v, want Asia/Kolkata", z)
	}
	if v := src.variables(&src.contacts[0]); v["first_name"] != "Asha" || len(v) != 1 {
		t.Errorf("variables = %v", v)
	}
	if v := src.variables(&src.contacts[4]); len(v) != 0 {
		t.Errorf("empty values must not become variables: %v", v)
	}
	if v := src.variables(&src.contacts[5]); v["first_name"] != "Ravi, Jr" {
		t.Errorf("quoted field: %v", v)
	}
}

func TestParseCSVHeaderProblemsStall(t *testing.T) {
	cases := map[string]string{
		"no number column":      "phone,name\n919876543210,A\n",
		"empty":                 "",
		"duplicate column":      "number,name,Name\n",
		"variable not an ident": "number,first name\n",
		"reserved variable":     "number,callfleet_x\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseCSV("list", strings.NewReader(in), nil)
			st, ok := err.(*errStalled)
			if !ok || st.reason != "ContactsInvalid" {
				t.Fatalf("err = %v, want a ContactsInvalid stall", err)
			}
		})
	}
	// Too many variables together with the template's.
	cols := []string{"number"}
	for i := range 20 {
		cols = append(cols, fmt.Sprintf("v%d", i))
	}
	tmpl := map[string]string{}
	for i := range 13 {
		tmpl[fmt.Sprintf("t%d", i)] = "x"
	}
	if _, err := parseCSV("list", strings.NewReader(strings.Join(cols, ",")+"\n"), tmpl); err == nil {
		t.Fatal("33 variables accepted")
	}
}

func TestContactListIndexesAreTheConcatenation(t *testing.T) {
	spec := &voicev1alpha1.CampaignSpec{Contacts: []voicev1alpha1.Contact{
		{Number: "919800000001"},
		{Number: "919800000002", TimeZone: "Nowhere/Land"},
	}}
	l := &contactList{}
	l.add(parseInline(spec))
	a, _ := parseCSV("a", strings.NewReader("number\n919800000003\nbad\n"), nil)
	b, _ := parseCSV("b", strings.NewReader("number\n919800000005\n"), nil)
	l.add(a)
	l.add(b)
	if l.total != 5 {
		t.Fatalf("total = %d, want 5", l.total)
	}
	for i, want := range []string{"919800000001", "", "919800000003", "", "919800000005"} {
		c, _ := l.at(int64(i))
		if c.number != want && !(want == "" && c.invalid != "") {
			t.Errorf("contact %d = %+v, want %s", i, c, want)
		}
	}
	if c, _ := l.at(5); c != nil {
		t.Errorf("at(5) = %+v, want nil", c)
	}
	inv := l.invalid()
	if len(inv) != 2 || inv[0].Source != SourceInline || inv[0].Line != 1 || inv[1].Source != "a" || inv[1].Line != 3 {
		t.Fatalf("invalid = %+v", inv)
	}
}

func TestInvalidContactsCappedAt100(t *testing.T) {
	var b strings.Builder
	b.WriteString("number\n")
	for range 250 {
		b.WriteString("x\n")
	}
	src, err := parseCSV("big", strings.NewReader(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &contactList{}
	l.add(src)
	if got := len(l.invalid()); got != maxInvalidReported {
		t.Fatalf("%d reported, want %d", got, maxInvalidReported)
	}
}

// TestParseCSVIsLinear parses 100,000 rows; it guards against quadratic
// work (a 100,000-row CSV must parse in well under a second, allowing for a
// loaded machine).
func TestParseCSVIsLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("number,timezone,name\n")
	for i := range 100000 {
		fmt.Fprintf(&b, "9180%08d,Asia/Kolkata,n%d\n", i, i)
	}
	start := time.Now()
	src, err := parseCSV("big", strings.NewReader(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.contacts) != 100000 {
		t.Fatalf("%d contacts", len(src.contacts))
	}
	t.Logf("parsed 100,000 rows in %s", time.Since(start))
}

func TestNormalizeNumber(t *testing.T) {
	for in, want := range map[string]string{
		"+91 98765-43210": "919876543210",
		" (212) 555.0100": "2125550100",
		"919876543210":    "919876543210",
	} {
		if got := normalizeNumber(in); got != want {
			t.Errorf("normalizeNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkParseCSV100k parses a 100,000-row contact CSV (with a zone and a
// variable per row) and reports the memory the parsed list keeps.
func BenchmarkParseCSV100k(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("number,timezone,name\n")
	for i := range 100000 {
		fmt.Fprintf(&sb, "9180%08d,Asia/Kolkata,n%d\n", i, i)
	}
	in := sb.String()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseCSV("big", strings.NewReader(in), nil); err != nil {
			b.Fatal(err)
		}
	}
}
