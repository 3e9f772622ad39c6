package campaign

import (
	"fmt"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Calling windows are wall-clock ranges: a window 09:00-17:00 on Mon is open
// whenever the clock on the wall of the contact's zone reads Monday, at or
// after 09:00 and before 17:00. That makes DST come out the way a person
// expects: on a spring-forward day a window starting in the skipped hour
// opens at the jump; on a fall-back day the repeated hour is inside the
// window twice.

// window is a parsed CallingWindow.
type window struct {
	days       uint8 // bit per time.Weekday; 0 means every day
	start, end int   // minutes after midnight; end is exclusive, up to 1440
}

// schedule is a parsed CampaignSchedule.
type schedule struct {
	zone     *time.Location
	windows  []window            // none: always open
	blackout map[string]struct{} // YYYY-MM-DD, read in the contact's zone
	// start and deadline bound every attempt (zero: unbounded).
	start, deadline time.Time
}

var dayBits = map[string]time.Weekday{
	"Sun": time.Sunday, "Mon": time.Monday, "Tue": time.Tuesday, "Wed": time.Wednesday,
	"Thu": time.Thursday, "Fri": time.Friday, "Sat": time.Saturday,
}

// parseSchedule validates what CEL cannot: the time zone exists.
func parseSchedule(s *voicev1alpha1.CampaignSchedule) (schedule, error) {
	out := schedule{zone: time.UTC}
	if s == nil {
		return out, nil
	}
	if s.StartTime != nil {
		out.start = s.StartTime.Time
	}
	if s.Deadline != nil {
		out.deadline = s.Deadline.Time
	}
	for _, d := range s.BlackoutDates {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return out, fmt.Errorf("schedule.blackoutDates: %q is not a date (YYYY-MM-DD)", d)
		}
		if out.blackout == nil {
			out.blackout = map[string]struct{}{}
		}
		out.blackout[d] = struct{}{}
	}
	if s.TimeZone != "" {
		loc, err := loadZone(s.TimeZone)
		if err != nil {
			return out, fmt.Errorf("schedule.timeZone: %w", err)
		}
		out.zone = loc
	}
	for i, w := range s.Windows {
		var pw window
		for _, d := range w.Days {
			wd, ok := dayBits[d]
			if !ok {
				return out, fmt.Errorf("schedule.windows[%d]: unknown day %q", i, d)
			}
			pw.days |= 1 << wd
		}
		var err error
		if pw.start, err = clockMinutes(w.Start); err != nil {
			return out, fmt.Errorf("schedule.windows[%d].start: %w", i, err)
		}
		if pw.end, err = clockMinutes(w.End); err != nil {
			return out, fmt.Errorf("schedule.windows[%d].end: %w", i, err)
		}
		if pw.start >= pw.end {
			return out, fmt.Errorf("schedule.windows[%d]: start %s is not before end %s", i, w.Start, w.End)
		}
		out.windows = append(out.windows, pw)
	}
	return out, nil
}

// clockMinutes parses HH:MM (24:00 allowed).
func clockMinutes(s string) (int, error) {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || len(s) != 5 || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return h*60 + m, nil
}

func (w window) onDay(d time.Weekday) bool { return w.days == 0 || w.days&(1<<d) != 0 }

// open reports whether a call may start at t in zone loc.
func (s schedule) open(t time.Time, loc *time.Location) bool {
	lt := t.In(loc)
	if _, off := s.blackout[lt.Format(time.DateOnly)]; off {
		return false
	}
	if len(s.windows) == 0 {
		return true
	}
	m := lt.Hour()*60 + lt.Minute()
	for _, w := range s.windows {
		if w.onDay(lt.Weekday()) && m >= w.start && m < w.end {
			return true
		}
	}
	return false
}

// horizon bounds the search for the next opening: every window recurs
// within a week, and a DST shift moves it by hours.
const horizon = 8 * 24 * time.Hour

// nextOpen returns the first instant at or after now when the schedule is
// open in loc. Candidates are every window start on the coming days (both
// instants when a fall-back repeats it) and every zone transition (a
// spring-forward jump into a window, or a fall-back into one); the earliest
// candidate that is open is the answer. ok is false when nothing opens
// within the horizon (no windows at all means always open).
func (s schedule) nextOpen(now time.Time, loc *time.Location) (time.Time, bool) {
	if s.open(now, loc) {
		return now, true
	}
	var best time.Time
	try := func(t time.Time) {
		if t.Before(now) || (!best.IsZero() && !t.Before(best)) || !s.open(t, loc) {
			return
		}
		best = t
	}
	lt := now.In(loc)
	for d := 0; d <= 8+len(s.blackout); d++ {
		y, m, day := lt.Date()
		// A blackout day ends at the next local midnight.
		for _, t := range wallInstants(time.Date(y, m, day+d, 12, 0, 0, 0, loc), 0, loc) {
			try(t)
		}
		for _, w := range s.windows {
			date := time.Date(y, m, day+d, 12, 0, 0, 0, loc)
			if !w.onDay(date.Weekday()) {
				continue
			}
			for _, t := range wallInstants(date, w.start, loc) {
				try(t)
			}
		}
	}
	// Zone transitions: the wall clock jumps, possibly into a window.
	for t := now.In(loc); ; {
		_, end := t.ZoneBounds()
		if end.IsZero() || end.Sub(now) > horizon+time.Duration(len(s.blackout))*24*time.Hour || !end.After(t) {
			break
		}
		try(end)
		t = end
	}
	return best, !best.IsZero()
}

// wallInstants returns the instants when the wall clock in loc reads
// minute-of-day min on the date of day: none in a spring-forward gap, two in
// a fall-back overlap, else one.
func wallInstants(day time.Time, min int, loc *time.Location) []time.Time {
	y, m, d := day.Date()
	naive := time.Date(y, m, d, min/60, min%60, 0, 0, time.UTC)
	// Every offset in effect around that day.
	guess := time.Date(y, m, d, min/60, min%60, 0, 0, loc)
	offsets := map[int]bool{}
	_, off := guess.Zone()
	offsets[off] = true
	start, end := guess.ZoneBounds()
	if !start.IsZero() {
		_, o := start.Add(-time.Second).Zone()
		offsets[o] = true
	}
	if !end.IsZero() {
		_, o := end.Zone()
		offsets[o] = true
	}
	var out []time.Time
	for o := range offsets {
		t := naive.Add(-time.Duration(o) * time.Second)
		lt := t.In(loc)
		ly, lm, ld := lt.Date()
		if ly == y && lm == m && ld == d && lt.Hour()*60+lt.Minute() == min {
			out = append(out, t)
		}
	}
	return out
}
