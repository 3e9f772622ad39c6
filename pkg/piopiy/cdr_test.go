package piopiy

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestCDRLookupsMatchGolden(t *testing.T) {
	f := newFake(t, nil)
	c := f.client(t)

	cdr, err := c.CDRByCMIUUID(context.Background(), "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if f.last().Path != "/v1/piopiy/cmiuuid_cdr" {
		t.Errorf("path %s", f.last().Path)
	}
	assertGolden(t, "request_cdr_by_cmiuuid", f.last().Body)
	checkTestCDR(t, cdr)

	cdrs, err := c.CDRsByRequestID(context.Background(), testRequestID)
	if err != nil {
		t.Fatal(err)
	}
	if f.last().Path != "/v1/piopiy/requestid_cdr" {
		t.Errorf("path %s", f.last().Path)
	}
	assertGolden(t, "request_cdr_by_request_id", f.last().Body)
	if len(cdrs) != 1 {
		t.Fatalf("%d cdrs", len(cdrs))
	}
	checkTestCDR(t, &cdrs[0])
}

func checkTestCDR(t *testing.T, c *CDR) {
	t.Helper()
	want := CDR{
		Status: CDRAnswered, Leg: LegA, Direction: DirectionOutbound,
		From: "918071387000", To: "919876543210", Duration: 9 * time.Second,
		Time:      time.UnixMilli(1700000000123).UTC(),
		StartTime: time.Unix(1700000000, 0).UTC(), AnswerTime: time.Unix(1700000005, 0).UTC(), EndTime: time.Unix(1700000014, 0).UTC(),
		CMIUUID: "c-1", RequestID: testRequestID, CallRate: "0.50", Balance: "12.25",
	}
	if c.Status != want.Status || c.Leg != want.Leg || c.Direction != want.Direction || c.From != want.From || c.To != want.To ||
		c.Duration != want.Duration || !c.Time.Equal(want.Time) || !c.StartTime.Equal(want.StartTime) ||
		!c.AnswerTime.Equal(want.AnswerTime) || !c.EndTime.Equal(want.EndTime) || c.CMIUUID != want.CMIUUID ||
		c.RequestID != want.RequestID || c.CallRate != want.CallRate || c.Balance != want.Balance {
		t.Errorf("cdr\n got %+v\nwant %+v", *c, want)
	}
	if c.Outcome() != "out_answered" {
		t.Errorf("Outcome() = %q", c.Outcome())
	}
}

func TestCDRLookupErrorClasses(t *testing.T) {
	for _, tc := range errorCases {
		if tc.lookup == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.handle)
			_, err := f.client(t).CDRsByRequestID(context.Background(), testRequestID)
			if !errors.Is(err, tc.lookup) {
				t.Errorf("err = %v, want %v", err, tc.lookup)
			}
			if IsAmbiguous(err) {
				t.Error("a lookup is never ambiguous")
			}
			if n := f.count(); n != tc.lookupRequests {
				t.Errorf("%d requests, want %d", n, tc.lookupRequests)
			}
			assertNoSecret(t, "error", err)
		})
	}
}

func TestCDRLookupRetriesThenSucceeds(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(w http.ResponseWriter, r *http.Request, n int)
	}{
		{"5xx", reply(500, `{"code":500}`)},
		{"429 without Retry-After", reply(429, `{"code":429}`)},
		{"429 with a short Retry-After", func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Retry-After", "0")
			writeJSON(w, 429, `{"code":429}`)
		}},
		{"reply lost", hijackAndClose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n < 3 {
					tc.fail(w, r, n)
					return
				}
				writeJSON(w, 200, successFor(r.URL.Path))
			})
			cdr, err := f.client(t).CDRByCMIUUID(context.Background(), "c-1")
			if err != nil {
				t.Fatal(err)
			}
			checkTestCDR(t, cdr)
			if f.count() != 3 {
				t.Errorf("%d requests, want 3", f.count())
			}
		})
	}
}

func TestCDRLookupGivesUpOnLongRetryAfter(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Retry-After", "120")
		writeJSON(w, 429, `{"code":429}`)
	})
	start := time.Now()
	_, err := f.client(t).CDRByCMIUUID(context.Background(), "c-1")
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindRateLimited || pe.RetryAfter != 2*time.Minute {
		t.Fatalf("err = %v", err)
	}
	if f.count() != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("%d requests in %s: it should hand the wait to the caller", f.count(), time.Since(start))
	}
}

func TestCDRLookupHonoursContext(t *testing.T) {
	f := newFake(t, reply(500, `{"code":500}`))
	c := f.client(t, WithLookupRetries(10, time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.CDRsByRequestID(ctx, testRequestID)
	if !errors.Is(err, ErrServer) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %s: the backoff ignored the deadline", time.Since(start))
	}

	// Cancellation during a pause ends the wait too.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if _, err := c.CDRsByRequestID(ctx, testRequestID); !errors.Is(err, ErrServer) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 900*time.Millisecond {
		t.Errorf("took %s after cancel", time.Since(start))
	}
}

func TestCDRLookupNotFoundAndEmpty(t *testing.T) {
	f := newFake(t, reply(200, `{"count":0,"cdr":[],"code":200}`))
	c := f.client(t)
	cdrs, err := c.CDRsByRequestID(context.Background(), "r")
	if err != nil || cdrs == nil || len(cdrs) != 0 {
		t.Errorf("empty list: %v, %v", cdrs, err)
	}
	if _, err := c.CDRByCMIUUID(context.Background(), "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no cdr in reply: %v", err)
	}
	if _, err := c.CDRByCMIUUID(context.Background(), ""); !errors.Is(err, ErrValidation) {
		t.Errorf("empty cmiuuid: %v", err)
	}
	if _, err := c.CDRsByRequestID(context.Background(), " "); !errors.Is(err, ErrValidation) {
		t.Errorf("empty request id: %v", err)
	}
}

func TestParseCDRResponse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		count int
		want  error
	}{
		{"object", `{"cdr":` + cdrObject + `,"code":200}`, 1, nil},
		{"list", `{"count":2,"cdr":[` + cdrObject + `,` + cdrObject + `],"code":200}`, 2, nil},
		{"null", `{"cdr":null,"code":200}`, 0, nil},
		{"empty list", `{"cdr":[],"count":0}`, 0, nil},
		{"not found", `{"code":404,"message":"not found"}`, 0, ErrNotFound},
		{"not json", `oops`, 0, ErrUnexpected},
		{"bad cdr", `{"cdr":{"duration":"long"}}`, 0, ErrUnexpected},
		{"bad list", `{"cdr":[{"time":{}}]}`, 0, ErrUnexpected},
		{"list of strings", `{"cdr":["x"]}`, 0, ErrUnexpected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cdrs, err := ParseCDRResponse([]byte(tc.body))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && len(cdrs) != tc.count {
				t.Errorf("%d cdrs, want %d", len(cdrs), tc.count)
			}
		})
	}
}
