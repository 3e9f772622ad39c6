package campaign

import (
	"testing"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestWindowsAcrossZonesAndDST(t *testing.T) {
	workdays := []string{"Mon", "Tue", "Wed", "Thu", "Fri"}
	nine2five := []voicev1alpha1.CallingWindow{{Days: workdays, Start: "09:00", End: "17:00"}}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name     string
		windows  []voicev1alpha1.CallingWindow
		zone     string // the contact's zone
		now      string // UTC
		wantOpen bool
		wantNext string // UTC; "" when open
	}{
		{"no windows: always open", nil, "UTC", "2026-03-07T03:00:00Z", true, ""},
		{"inside a weekday window", nine2five, "Europe/London", "2026-06-10T10:00:00Z", true, ""}, // 11:00 BST
		{"before the window: opens today", nine2five, "Asia/Kolkata", "2026-06-10T02:00:00Z", false, "2026-06-10T03:30:00Z"},
		{"end is exclusive", nine2five, "UTC", "2026-06-10T17:00:00Z", false, "2026-06-11T09:00:00Z"},
		{"Friday evening waits for Monday", nine2five, "America/New_York", "2026-06-12T22:00:00Z", false, "2026-06-15T13:00:00Z"},
		// The same instant is Saturday in Kolkata but still Friday in New York.
		{"zone boundary: Saturday in Kolkata", nine2five, "Asia/Kolkata", "2026-06-13T03:00:00Z", false, "2026-06-15T03:30:00Z"},
		{"zone boundary: Friday in Los Angeles", []voicev1alpha1.CallingWindow{{Days: []string{"Fri"}, Start: "18:00", End: "24:00"}}, "America/Los_Angeles", "2026-06-13T03:00:00Z", true, ""},
		{"date line: Kiritimati is a day ahead of Pago Pago", []voicev1alpha1.CallingWindow{{Days: []string{"Sat"}, Start: "00:00", End: "24:00"}}, "Pacific/Pago_Pago", "2026-06-13T03:00:00Z", false, "2026-06-13T11:00:00Z"},
		{"date line: already Saturday in Kiritimati", []voicev1alpha1.CallingWindow{{Days: []string{"Sat"}, Start: "00:00", End: "24:00"}}, "Pacific/Kiritimati", "2026-06-13T03:00:00Z", true, ""},
		// New York springs forward on 2026-03-08 at 02:00 EST → 03:00 EDT.
		{"spring forward: a window starting in the skipped hour opens at the jump", []voicev1alpha1.CallingWindow{{Start: "02:30", End: "04:00"}}, "America/New_York", "2026-03-08T05:00:00Z", false, "2026-03-08T07:00:00Z"},
		{"spring forward: a 09:00 window is 13:00 UTC after the change", nine2five, "America/New_York", "2026-03-09T12:30:00Z", false, "2026-03-09T13:00:00Z"},
		{"spring forward: the day before it was 14:00 UTC", nine2five, "America/New_York", "2026-03-06T13:30:00Z", false, "2026-03-06T14:00:00Z"},
		// New York falls back on 2026-11-01 at 02:00 EDT → 01:00 EST.
		{"fall back: the repeated hour opens again", []voicev1alpha1.CallingWindow{{Start: "01:00", End: "01:30"}}, "America/New_York", "2026-11-01T05:45:00Z", false, "2026-11-01T06:00:00Z"},
		{"fall back: first 01:00 comes first", []voicev1alpha1.CallingWindow{{Start: "01:00", End: "01:30"}}, "America/New_York", "2026-11-01T04:00:00Z", false, "2026-11-01T05:00:00Z"},
		{"fall back into a window's middle", []voicev1alpha1.CallingWindow{{Start: "00:30", End: "01:30"}}, "America/New_York", "2026-11-01T05:45:00Z", false, "2026-11-01T06:00:00Z"},
		// Lord Howe shifts by 30 minutes: 2026-10-04 02:00 → 02:30.
		{"half-hour DST shift", []voicev1alpha1.CallingWindow{{Start: "02:10", End: "03:00"}}, "Australia/Lord_Howe", "2026-10-03T14:00:00Z", false, "2026-10-03T15:30:00Z"},
		{"several windows: the earliest next opening", []voicev1alpha1.CallingWindow{{Start: "18:00", End: "20:00"}, {Start: "09:00", End: "12:00"}}, "UTC", "2026-06-10T12:30:00Z", false, "2026-06-10T18:00:00Z"},
		{"24:00 end includes 23:59", []voicev1alpha1.CallingWindow{{Start: "22:00", End: "24:00"}}, "UTC", "2026-06-10T23:59:30Z", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseSchedule(&voicev1alpha1.CampaignSchedule{TimeZone: "UTC", Windows: tc.windows})
			if err != nil {
				t.Fatal(err)
			}
			loc := mustZone(t, tc.zone)
			now := utc(tc.now)
			if got := s.open(now, loc); got != tc.wantOpen {
				t.Fatalf("open(%s in %s) = %v, want %v", now.In(loc), tc.zone, got, tc.wantOpen)
			}
			next, ok := s.nextOpen(now, loc)
			if !ok {
				t.Fatal("no next opening")
			}
			want := now
			if tc.wantNext != "" {
				want = utc(tc.wantNext)
			}
			if !next.Equal(want) {
				t.Fatalf("nextOpen = %s (%s local), want %s (%s local)", next.UTC(), next.In(loc), want.UTC(), want.In(loc))
			}
			if !s.open(next, loc) {
				t.Fatalf("schedule is not open at its next opening %s", next.In(loc))
			}
			// Nothing opens in between: a minute before is still closed.
			if tc.wantNext != "" && next.Sub(now) > time.Minute && s.open(next.Add(-time.Minute), loc) {
				t.Fatalf("open a minute before the reported opening %s", next.In(loc))
			}
		})
	}
}

func TestParseScheduleRejectsUnknownZone(t *testing.T) {
	if _, err := parseSchedule(&voicev1alpha1.CampaignSchedule{TimeZone: "Mars/Olympus_Mons"}); err == nil {
		t.Fatal("want an error for an unknown zone")
	}
	s, err := parseSchedule(nil)
	if err != nil || s.zone != time.UTC || len(s.windows) != 0 {
		t.Fatalf("nil schedule = %+v, %v; want UTC, always open", s, err)
	}
}

// TestBlackoutDates: a blackout date closes the whole local day, windows or
// not, and the next opening skips it (and a run of them).
func TestBlackoutDates(t *testing.T) {
	kolkata := mustZone(t, "Asia/Kolkata")
	cases := []struct {
		name     string
		windows  []voicev1alpha1.CallingWindow
		blackout []string
		now      time.Time
		wantOpen bool
		wantNext time.Time
	}{
		{"no windows, a holiday", nil, []string{"2026-08-15"}, time.Date(2026, 8, 15, 10, 0, 0, 0, kolkata), false, time.Date(2026, 8, 16, 0, 0, 0, 0, kolkata)},
		{"a run of holidays", nil, []string{"2026-12-25", "2026-12-26", "2026-12-27"}, time.Date(2026, 12, 25, 1, 0, 0, 0, kolkata), false, time.Date(2026, 12, 28, 0, 0, 0, 0, kolkata)},
		{"windows and a holiday", []voicev1alpha1.CallingWindow{{Start: "09:00", End: "18:00"}}, []string{"2026-08-15"}, time.Date(2026, 8, 15, 10, 0, 0, 0, kolkata), false, time.Date(2026, 8, 16, 9, 0, 0, 0, kolkata)},
		{"the day after", nil, []string{"2026-08-15"}, time.Date(2026, 8, 16, 0, 0, 0, 0, kolkata), true, time.Time{}},
		{"read in the contact's zone", nil, []string{"2026-08-15"}, time.Date(2026, 8, 14, 19, 0, 0, 0, time.UTC), false, time.Date(2026, 8, 16, 0, 0, 0, 0, kolkata)}, // 00:30 on the 15th in Kolkata
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseSchedule(&voicev1alpha1.CampaignSchedule{Windows: tc.windows, BlackoutDates: tc.blackout})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.open(tc.now, kolkata); got != tc.wantOpen {
				t.Fatalf("open = %v, want %v", got, tc.wantOpen)
			}
			if tc.wantOpen {
				return
			}
			next, ok := s.nextOpen(tc.now, kolkata)
			if !ok || !next.Equal(tc.wantNext) {
				t.Fatalf("nextOpen = %s %v, want %s", next, ok, tc.wantNext)
			}
		})
	}
}
