package campaign

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// maxVariables is a Call's limit on spec.variables (MaxProperties).
const maxVariables = 32

// maxInvalidReported caps status.invalidContacts.
const maxInvalidReported = 100

// SourceInline is the InvalidContact.Source of inline contacts.
const SourceInline = "inline"

var variableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// contact is one entry of a Campaign's contact list: an inline contact or a
// CSV data row. Invalid rows stay in their source (with invalid set) so they
// are counted and reported with their line.
type contact struct {
	id      string // the id column or field; "" when not given
	number  string
	zone    *time.Location // nil: the schedule's zone
	invalid string         // why the row is never called; "" when valid
	line    int32          // CSV line (1 is the header), or inline index
	// Variables: an inline contact's map, or a CSV row's values by the
	// source's varNames (empty values are left out).
	vars   map[string]string
	values []string
}

// key identifies the contact across edits: its id, else its number.
func (c *contact) key() string {
	if c.id != "" {
		return c.id
	}
	return c.number
}

// source is the parsed contacts of one place: the inline list or one CSV.
type source struct {
	name     string
	varNames []string
	contacts []contact
}

// variables returns the contact's own variables.
func (s *source) variables(c *contact) map[string]string {
	if c.vars != nil || c.values == nil {
		return c.vars
	}
	out := make(map[string]string, len(s.varNames))
	for i, v := range c.values {
		if v != "" {
			out[s.varNames[i]] = v
		}
	}
	return out
}

// entry is a callable contact of the list: valid, and the first with its
// key and its number.
type entry struct {
	c   *contact
	src *source
}

// contactList is the concatenation of a Campaign's sources, reduced to one
// entry per person. Order matters only for who is tried first; identity is
// the key.
type contactList struct {
	sources []*source
	entries []entry
	byKey   map[string]int
	total   int64
	// per source, in order: rows, invalid (conflicting ids included),
	// duplicates.
	counts  []voicev1alpha1.SourceStatus
	invalid []voicev1alpha1.InvalidContact // the first maxInvalidReported
}

func (l *contactList) dropped() int64 {
	var n int64
	for _, c := range l.counts {
		n += c.Invalid + c.Duplicates
	}
	return n
}

func (l *contactList) duplicates() int64 {
	var n int64
	for _, c := range l.counts {
		n += c.Duplicates
	}
	return n
}

// buildList reduces sources to entries. A number seen before is a
// duplicate (dialed once); a key seen before with the same number too; a
// key (an id) seen before with another number is a conflict, reported with
// both lines and never called.
func buildList(sources []*source) *contactList {
	l := &contactList{sources: sources, byKey: map[string]int{}}
	byNumber := map[string]int{}
	where := func(e entry) string { return fmt.Sprintf("%s line %d", e.src.name, e.c.line) }
	for _, s := range sources {
		st := voicev1alpha1.SourceStatus{Name: s.name, Rows: int64(len(s.contacts))}
		l.total += st.Rows
		for i := range s.contacts {
			c := &s.contacts[i]
			reason := c.invalid
			if reason == "" {
				if j, seen := l.byKey[c.key()]; seen && l.entries[j].c.number != c.number {
					reason = fmt.Sprintf("id %q is already used by %s for number %s", c.id, where(l.entries[j]), l.entries[j].c.number)
				} else if seen {
					st.Duplicates++
					continue
				} else if _, seen := byNumber[c.number]; seen {
					st.Duplicates++
					continue
				}
			}
			if reason != "" {
				st.Invalid++
				if len(l.invalid) < maxInvalidReported {
					l.invalid = append(l.invalid, voicev1alpha1.InvalidContact{Source: s.name, Line: c.line, Reason: reason})
				}
				continue
			}
			l.byKey[c.key()] = len(l.entries)
			byNumber[c.number] = len(l.entries)
			l.entries = append(l.entries, entry{c: c, src: s})
		}
		l.counts = append(l.counts, st)
	}
	return l
}

// zones caches time.LoadLocation, which reads the tz database on every call:
// a 100,000-row CSV names a handful of zones.
var zones sync.Map // string → *time.Location or error

func loadZone(name string) (*time.Location, error) {
	if v, ok := zones.Load(name); ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		err = fmt.Errorf("unknown time zone %q", name)
		zones.Store(name, err)
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// normalizeNumber turns a written phone number into the digits Piopiy
// wants: spaces, dashes, dots, brackets and a leading '+' are dropped.
func normalizeNumber(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "+")
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')', '\t':
			return -1
		}
		return r
	}, s)
}

// checkVariables reports a variable set a Call would refuse: a name that is
// not an identifier or is reserved, or more than maxVariables together with
// the template's.
func checkVariables(names []string, template map[string]string) error {
	union := len(template)
	for _, n := range names {
		if !variableRE.MatchString(n) || strings.HasPrefix(n, "callfleet_") {
			return fmt.Errorf("variable name %q must be an identifier (a letter or '_' then letters, digits or '_') not starting with callfleet_", n)
		}
		if _, ok := template[n]; !ok {
			union++
		}
	}
	if union > maxVariables {
		return fmt.Errorf("%d variables with the template's; a Call takes at most %d", union, maxVariables)
	}
	return nil
}

// parseInline makes the inline source. Its contacts were validated by the
// CRD except for time zones and variable names.
func parseInline(spec *voicev1alpha1.CampaignSpec) *source {
	s := &source{name: SourceInline, contacts: make([]contact, len(spec.Contacts))}
	for i, in := range spec.Contacts {
		c := contact{id: in.ID, number: normalizeNumber(in.Number), line: int32(i), vars: in.Variables}
		if c.vars == nil {
			c.vars = map[string]string{}
		}
		names := make([]string, 0, len(in.Variables))
		for k := range in.Variables {
			names = append(names, k)
		}
		switch {
		case !piopiy.ValidNumber(c.number):
			c.invalid = fmt.Sprintf("number %q is not 7 to 16 digits", in.Number)
		case in.TimeZone != "":
			loc, err := loadZone(in.TimeZone)
			if err != nil {
				c.invalid = err.Error()
			}
			c.zone = loc
		}
		if c.invalid == "" {
			if err := checkVariables(names, spec.CallTemplate.Spec.Variables); err != nil {
				c.invalid = err.Error()
			}
		}
		s.contacts[i] = c
	}
	return s
}

// maxRecordLines bounds how many physical lines one CSV record may span
// (a quoted field with line breaks): past it, an unbalanced quote is a bad
// row, not the start of a field that swallows the rest of the file.
const maxRecordLines = 8

// parseCSV reads a contact CSV: a header row naming a `number` column,
// optional `id` and `timezone` columns, and variable columns. It reads
// record by record, each within at most maxRecordLines lines, so a stray
// quote makes one bad row, reported with its line, and never swallows the
// rows after it. A bad header fails the whole source.
func parseCSV(name string, r io.Reader, template map[string]string) (*source, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("contacts CSV %s: %w", name, err)
	}
	lines := newLineReader(string(b))
	headerText, _, ok := lines.record()
	if !ok {
		return nil, &errStalled{"ContactsInvalid", fmt.Errorf("contacts CSV %s is empty: it needs a header row with a number column", name)}
	}
	header, err := readRecord(headerText)
	if err != nil {
		return nil, &errStalled{"ContactsInvalid", fmt.Errorf("contacts CSV %s header: %w", name, err)}
	}
	s := &source{name: name}
	numberCol, zoneCol, idCol := -1, -1, -1
	varCols := []int{}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		key := strings.ToLower(h)
		if seen[key] {
			return nil, &errStalled{"ContactsInvalid", fmt.Errorf("contacts CSV %s: column %q appears twice", name, h)}
		}
		seen[key] = true
		switch key {
		case "number":
			numberCol = i
		case "timezone":
			zoneCol = i
		case "id":
			idCol = i
		default:
			varCols = append(varCols, i)
			s.varNames = append(s.varNames, h)
		}
	}
	if numberCol < 0 {
		return nil, &errStalled{"ContactsInvalid", fmt.Errorf("contacts CSV %s has no number column in its header %q", name, strings.Join(header, ","))}
	}
	if err := checkVariables(s.varNames, template); err != nil {
		return nil, &errStalled{"ContactsInvalid", fmt.Errorf("contacts CSV %s: %w", name, err)}
	}
	for {
		text, line, ok := lines.record()
		if !ok {
			break
		}
		c := contact{line: int32(line)}
		rec, err := readRecord(text)
		switch {
		case err != nil:
			c.invalid = err.Error()
		case len(rec) != len(header):
			c.invalid = fmt.Sprintf("%d columns, the header has %d", len(rec), len(header))
		}
		if c.invalid != "" {
			s.contacts = append(s.contacts, c)
			continue
		}
		c.number = normalizeNumber(rec[numberCol])
		if idCol >= 0 {
			c.id = strings.TrimSpace(rec[idCol])
		}
		switch {
		case !piopiy.ValidNumber(c.number):
			c.invalid = fmt.Sprintf("number %q is not 7 to 16 digits", rec[numberCol])
			c.number = ""
		case len(c.id) > 128:
			c.invalid = "id is longer than 128 characters"
		case zoneCol >= 0 && strings.TrimSpace(rec[zoneCol]) != "":
			loc, err := loadZone(strings.TrimSpace(rec[zoneCol]))
			if err != nil {
				c.invalid = err.Error()
			}
			c.zone = loc
		}
		if c.invalid == "" && len(varCols) > 0 {
			c.values = make([]string, len(varCols))
			for j, col := range varCols {
				c.values[j] = strings.TrimSpace(rec[col])
			}
		}
		s.contacts = append(s.contacts, c)
	}
	return s, nil
}

// readRecord parses one CSV record (which may span lines inside quotes).
func readRecord(text string) ([]string, error) {
	if !strings.Contains(text, `"`) {
		// Most rows: no quoting, so encoding/csv would only split on commas
		// (and trim leading spaces, as it is configured to).
		fields := strings.Split(text, ",")
		for i, f := range fields {
			fields[i] = strings.TrimLeft(f, " \t")
		}
		return fields, nil
	}
	cr := csv.NewReader(strings.NewReader(text))
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	rec, err := cr.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	if _, err := cr.Read(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one record on the line: unbalanced quotes")
	}
	return rec, nil
}

// lineReader hands out the text of one CSV record at a time, with its first
// line number: a physical line, or, when its quotes are unbalanced, it and
// the following lines until they balance, at most maxRecordLines of them.
// A line that cannot be balanced is returned alone (and fails to parse).
// Blank lines are skipped, as encoding/csv skips them.
type lineReader struct {
	lines []string
	next  int
}

func newLineReader(data string) *lineReader {
	data = strings.ReplaceAll(data, "\r\n", "\n")
	return &lineReader{lines: strings.Split(data, "\n")}
}

func (lr *lineReader) record() (text string, line int, ok bool) {
	for lr.next < len(lr.lines) && strings.TrimSpace(lr.lines[lr.next]) == "" {
		lr.next++
	}
	if lr.next >= len(lr.lines) {
		return "", 0, false
	}
	first := lr.next
	quotes := strings.Count(lr.lines[first], `"`)
	if quotes%2 == 0 {
		lr.next++
		return lr.lines[first], first + 1, true
	}
	for end := first + 1; end < len(lr.lines) && end-first < maxRecordLines; end++ {
		quotes += strings.Count(lr.lines[end], `"`)
		if quotes%2 == 0 {
			joined := strings.Join(lr.lines[first:end+1], "\n")
			if _, err := readRecord(joined); err == nil {
				lr.next = end + 1
				return joined, first + 1, true
			}
			break
		}
	}
	lr.next = first + 1
	return lr.lines[first], first + 1, true
}

// parsedSource is a CSV parsed from one version of a ConfigMap.
type parsedSource struct {
	uid             types.UID
	resourceVersion string
	templateVars    string
	src             *source
	err             error
}

// doNotCall is a parsed do-not-call ConfigMap.
type doNotCall struct {
	uid             types.UID
	resourceVersion string
	numbers         map[string]struct{}
}

// sourceCache keeps parsed CSVs and do-not-call lists by ConfigMap
// resourceVersion, so a reconcile re-reads a 100,000-row CSV only when it
// changed, not on every Call that finishes. Entries are per Campaign and
// dropped with it.
type sourceCache struct {
	mu      sync.Mutex
	sources map[string]*parsedSource
	dnc     map[string]*doNotCall
}

func cacheKey(c *voicev1alpha1.Campaign, cm, key string) string {
	return c.Namespace + "/" + c.Name + "/" + cm + "/" + key
}

// forget drops what is cached for a Campaign.
func (sc *sourceCache) forget(campaign types.NamespacedName) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	prefix := campaign.Namespace + "/" + campaign.Name + "/"
	for k := range sc.sources {
		if strings.HasPrefix(k, prefix) {
			delete(sc.sources, k)
		}
	}
	for k := range sc.dnc {
		if strings.HasPrefix(k, prefix) {
			delete(sc.dnc, k)
		}
	}
}

// noDeepCopy reads ConfigMaps from the informer without copying them: they
// are only read, and a contact CSV can be close to a megabyte.
var noDeepCopy = client.UnsafeDisableDeepCopy

// loadContacts builds the Campaign's contact list.
func (r *Reconciler) loadContacts(ctx context.Context, c *voicev1alpha1.Campaign) (*contactList, error) {
	sources := []*source{parseInline(&c.Spec)}
	tv := templateVarsKey(c.Spec.CallTemplate.Spec.Variables)
	for _, from := range c.Spec.ContactsFrom {
		key := from.Key
		if key == "" {
			key = "contacts.csv"
		}
		var cm corev1.ConfigMap
		if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: from.ConfigMapRef.Name}, &cm, noDeepCopy); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &errStalled{"ContactsNotFound", fmt.Errorf("contacts ConfigMap %s not found", from.ConfigMapRef.Name)}
			}
			return nil, fmt.Errorf("reading contacts ConfigMap %s: %w", from.ConfigMapRef.Name, err)
		}
		ck := cacheKey(c, cm.Name, key)
		r.cache.mu.Lock()
		p := r.cache.sources[ck]
		r.cache.mu.Unlock()
		if p == nil || p.uid != cm.UID || p.resourceVersion != cm.ResourceVersion || p.templateVars != tv {
			data, ok := cm.Data[key]
			p = &parsedSource{uid: cm.UID, resourceVersion: cm.ResourceVersion, templateVars: tv}
			if !ok {
				p.err = &errStalled{"ContactsInvalid", fmt.Errorf("contacts ConfigMap %s has no key %q", cm.Name, key)}
			} else {
				p.src, p.err = parseCSV(cm.Name, strings.NewReader(data), c.Spec.CallTemplate.Spec.Variables)
			}
			r.cache.mu.Lock()
			r.cache.sources[ck] = p
			r.cache.mu.Unlock()
		}
		if p.err != nil {
			return nil, p.err
		}
		sources = append(sources, p.src)
	}
	return buildList(sources), nil
}

func templateVarsKey(vars map[string]string) string {
	// Only the names matter (checkVariables); their count is a good enough
	// key together with a sorted join.
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// loadDoNotCall reads the do-not-call ConfigMap: every value, one number a
// line, trimmed, '+' and separators stripped; blank lines and lines starting
// with '#' are ignored.
func (r *Reconciler) loadDoNotCall(ctx context.Context, c *voicev1alpha1.Campaign) (map[string]struct{}, error) {
	if c.Spec.DoNotCallRef == nil {
		return nil, nil
	}
	var cm corev1.ConfigMap
	name := c.Spec.DoNotCallRef.Name
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, &cm, noDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &errStalled{"DoNotCallNotFound", fmt.Errorf("do-not-call ConfigMap %s not found; no Call starts until it exists", name)}
		}
		return nil, fmt.Errorf("reading do-not-call ConfigMap %s: %w", name, err)
	}
	ck := cacheKey(c, name, "")
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	if d := r.cache.dnc[ck]; d != nil && d.uid == cm.UID && d.resourceVersion == cm.ResourceVersion {
		return d.numbers, nil
	}
	d := &doNotCall{uid: cm.UID, resourceVersion: cm.ResourceVersion, numbers: map[string]struct{}{}}
	for _, v := range cm.Data {
		for line := range strings.Lines(v) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			d.numbers[normalizeNumber(line)] = struct{}{}
		}
	}
	r.cache.dnc[ck] = d
	return d.numbers, nil
}
