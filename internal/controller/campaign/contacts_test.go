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

// TestContactListIdentity is table-driven over lists: each person is one
// entry, identified by id or number, whatever the order; a number listed
// twice is one entry and a duplicate; an id reused for another number is a
// conflict reported with its line.
func TestContactListIdentity(t *testing.T) {
	cases := []struct {
		name       string
		inline     []voicev1alpha1.Contact
		csv        string
		wantKeys   []string
		duplicates int64
		invalid    []string // "source:line:reason substring"
	}{
		{
			name:     "keys are numbers without ids",
			inline:   []voicev1alpha1.Contact{{Number: "919800000001"}, {Number: "+91 98000 00002"}},
			wantKeys: []string{"919800000001", "919800000002"},
		},
		{
			name:       "a number twice is dialed once",
			inline:     []voicev1alpha1.Contact{{Number: "919800000001"}},
			csv:        "number\n+919800000001\n919800000003\n919800000003\n",
			wantKeys:   []string{"919800000001", "919800000003"},
			duplicates: 2,
		},
		{
			name:     "ids are keys",
			csv:      "id,number\nA-1,919800000001\nA-2,919800000002\n",
			wantKeys: []string{"A-1", "A-2"},
		},
		{
			name:       "same id, same number: a duplicate",
			csv:        "id,number\nA-1,919800000001\nA-1,919800000001\n",
			wantKeys:   []string{"A-1"},
			duplicates: 1,
		},
		{
			name:     "same id, another number: a conflict with both lines",
			csv:      "id,number\nA-1,919800000001\nA-1,919800000009\n",
			wantKeys: []string{"A-1"},
			invalid:  []string{`list:3:id "A-1" is already used by list line 2`},
		},
		{
			name:       "two ids, one number: dialed once",
			csv:        "id,number\nA-1,919800000001\nA-2,919800000001\n",
			wantKeys:   []string{"A-1"},
			duplicates: 1,
		},
		{
			name:     "invalid rows are reported, not keyed",
			inline:   []voicev1alpha1.Contact{{Number: "919800000002", TimeZone: "Nowhere/Land"}},
			csv:      "number\nbad\n919800000003\n",
			wantKeys: []string{"919800000003"},
			invalid:  []string{"inline:0:unknown time zone", "list:2:not 7 to 16 digits"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sources := []*source{parseInline(&voicev1alpha1.CampaignSpec{Contacts: tc.inline})}
			if tc.csv != "" {
				src, err := parseCSV("list", strings.NewReader(tc.csv), nil)
				if err != nil {
					t.Fatal(err)
				}
				sources = append(sources, src)
			}
			l := buildList(sources)
			var keys []string
			for _, e := range l.entries {
				keys = append(keys, e.c.key())
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.wantKeys) {
				t.Errorf("keys %v, want %v", keys, tc.wantKeys)
			}
			if l.duplicates() != tc.duplicates {
				t.Errorf("duplicates %d, want %d", l.duplicates(), tc.duplicates)
			}
			if len(l.invalid) != len(tc.invalid) {
				t.Fatalf("invalid %+v, want %v", l.invalid, tc.invalid)
			}
			for i, want := range tc.invalid {
				got := fmt.Sprintf("%s:%d:%s", l.invalid[i].Source, l.invalid[i].Line, l.invalid[i].Reason)
				parts := strings.SplitN(want, ":", 3)
				if !strings.HasPrefix(got, parts[0]+":"+parts[1]+":") || !strings.Contains(got, parts[2]) {
					t.Errorf("invalid[%d] = %s, want %s", i, got, want)
				}
			}
			var rows int64
			for _, c := range l.counts {
				rows += c.Rows
			}
			if rows != l.total || l.total != int64(len(tc.inline))+int64(strings.Count(tc.csv, "\n")-btoiTest(tc.csv != "")) {
				t.Errorf("rows %d, total %d", rows, l.total)
			}
		})
	}
}

func btoiTest(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestInvalidContactsSampledCountedExactly(t *testing.T) {
	var b strings.Builder
	b.WriteString("number\n")
	for range 250 {
		b.WriteString("x\n")
	}
	src, err := parseCSV("big", strings.NewReader(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := buildList([]*source{src})
	if got := len(l.invalid); got != maxInvalidReported {
		t.Fatalf("%d reported, want %d", got, maxInvalidReported)
	}
	if l.counts[0].Invalid != 250 {
		t.Fatalf("%d counted invalid, want 250", l.counts[0].Invalid)
	}
}

// TestCSVStrayQuotesCountedExactly: 100,000 rows, every tenth with a stray
// quote (an opening quote never closed, or a bare quote inside a field).
// Each stray quote costs its own row only: exactly 90,000 contacts and
// 10,000 invalid rows, each reported at its own line.
func TestCSVStrayQuotesCountedExactly(t *testing.T) {
	var b strings.Builder
	b.WriteString("number,name\n")
	for i := range 100000 {
		switch {
		case i%20 == 0:
			fmt.Fprintf(&b, "9180%08d,\"unclosed name\n", i)
		case i%10 == 0:
			fmt.Fprintf(&b, "9180%08d,O\"Brien\n", i)
		default:
			fmt.Fprintf(&b, "9180%08d,n%d\n", i, i)
		}
	}
	src, err := parseCSV("big", strings.NewReader(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := buildList([]*source{src})
	if got := len(l.entries); got != 90000 {
		t.Fatalf("%d contacts, want 90000", got)
	}
	if st := l.counts[0]; st.Rows != 100000 || st.Invalid != 10000 || st.Duplicates != 0 {
		t.Fatalf("counts %+v, want 100000 rows, 10000 invalid", st)
	}
	// Row i is on line i+2; the sample names the first bad rows exactly.
	for j, inv := range l.invalid[:4] {
		if want := int32(j*10 + 2); inv.Line != want {
			t.Errorf("invalid[%d] at line %d, want %d (%s)", j, inv.Line, want, inv.Reason)
		}
	}
	// A quoted field that really spans lines still parses as one row.
	src, err = parseCSV("multi", strings.NewReader("number,note\n919800000001,\"two\nlines\"\n919800000002,x\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := buildList([]*source{src}); len(l.entries) != 2 || l.counts[0].Invalid != 0 || src.variables(l.entries[0].c)["note"] != "two\nlines" {
		t.Fatalf("multi-line field: %+v %+v", l.counts, l.invalid)
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
