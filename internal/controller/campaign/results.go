package campaign

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// The results record
//
// Each Campaign keeps one line per done contact in Campaign-owned
// ConfigMaps `<campaign>-results-NNN`, key results.csv, filled in order: a
// new shard starts when the last would pass shardLimit. The first shard
// starts with the header, so the shards' values concatenated in name order
// are one CSV (docs/campaign.md has the kubectl one-liner). A contact is
// written once, when its last attempt is final, and never changes after:
// the record is append-only, so a write is one shard update (rarely two)
// for a whole batch of contacts.
//
// The record is also the Campaign's progress: a contact is done when its
// key is in it, whatever the list's order, whatever Calls were deleted.
// The controller writes a finished Call's line before it releases the
// Call's count finalizer, so a Call never goes (TTL, a person) before its
// contact is recorded.

// ResultsKey is the ConfigMap key holding a shard's CSV.
const ResultsKey = "results.csv"

// resultsHeader names the columns of the results CSV.
var resultsHeader = []string{"key", "number", "attempts", "outcome", "disposition", "summary", "lastAttemptTime", "recording"}

// shardLimit is the most CSV bytes one shard holds: well under etcd's
// ~1.5 MiB object limit with the ConfigMap's metadata and encoding.
const shardLimit = 900 << 10

// resultRow is one contact's line in the results record.
type resultRow struct {
	key, number string
	attempts    int32
	outcome     voicev1alpha1.CallOutcome
	disposition string
	summary     string
	lastAttempt time.Time
	recording   string
}

func (r *resultRow) fields() []string {
	t := ""
	if !r.lastAttempt.IsZero() {
		t = r.lastAttempt.UTC().Format(time.RFC3339)
	}
	return []string{r.key, r.number, strconv.Itoa(int(r.attempts)), string(r.outcome), r.disposition, r.summary, t, r.recording}
}

func parseRow(f []string) (resultRow, error) {
	if len(f) != len(resultsHeader) {
		return resultRow{}, fmt.Errorf("%d fields, want %d", len(f), len(resultsHeader))
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return resultRow{}, fmt.Errorf("attempts %q: %w", f[2], err)
	}
	r := resultRow{key: f[0], number: f[1], attempts: int32(n), outcome: voicev1alpha1.CallOutcome(f[3]), disposition: f[4], summary: f[5], recording: f[7]}
	if f[6] != "" {
		if r.lastAttempt, err = time.Parse(time.RFC3339, f[6]); err != nil {
			return resultRow{}, fmt.Errorf("lastAttemptTime %q: %w", f[6], err)
		}
	}
	return r, nil
}

// encodeRows appends rows as CSV lines.
func encodeRows(dst *bytes.Buffer, rows ...[]string) {
	w := csv.NewWriter(dst)
	for _, r := range rows {
		_ = w.Write(r) // a bytes.Buffer does not fail
	}
	w.Flush()
}

// shard is one results ConfigMap as last read or written.
type shard struct {
	name            string
	resourceVersion string
	data            string
}

// record is a Campaign's results record in memory.
type record struct {
	uid    types.UID
	shards []*shard
	rows   map[string]*resultRow
}

// resultsStore keeps each Campaign's record between reconciles. It is
// loaded from the apiserver (not the cache) when missing, and dropped on
// any write conflict, so it is never trusted past what was read or written.
type resultsStore struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*record
}

func (s *resultsStore) get(key types.NamespacedName) *record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

func (s *resultsStore) put(key types.NamespacedName, r *record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.NamespacedName]*record{}
	}
	s.m[key] = r
}

func (s *resultsStore) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// loadRecord returns the Campaign's results record, reading it from the
// apiserver when this process has none (a start, a conflict).
func (r *Reconciler) loadRecord(ctx context.Context, c *voicev1alpha1.Campaign) (*record, error) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	if rec := r.results.get(key); rec != nil && rec.uid == c.UID {
		return rec, nil
	}
	var list corev1.ConfigMapList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{voicev1alpha1.LabelCampaignResults: LabelValue(c.Name)}); err != nil {
		return nil, fmt.Errorf("reading the results record: %w", err)
	}
	rec := &record{uid: c.UID, rows: map[string]*resultRow{}}
	byName := map[string]*corev1.ConfigMap{}
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], c) {
			byName[list.Items[i].Name] = &list.Items[i]
		}
	}
	// Shards are filled in order; a gap would mean one was deleted, and the
	// ones after it are still read.
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		cm := byName[n]
		sh := &shard{name: cm.Name, resourceVersion: cm.ResourceVersion, data: cm.Data[ResultsKey]}
		cr := csv.NewReader(bytes.NewReader([]byte(sh.data)))
		cr.FieldsPerRecord = -1
		for {
			f, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, &errStalled{"ResultsInvalid", fmt.Errorf("results ConfigMap %s: %w", cm.Name, err)}
			}
			if slices.Equal(f, resultsHeader) {
				continue
			}
			row, err := parseRow(f)
			if err != nil {
				return nil, &errStalled{"ResultsInvalid", fmt.Errorf("results ConfigMap %s: %w", cm.Name, err)}
			}
			rec.rows[row.key] = &row
		}
		rec.shards = append(rec.shards, sh)
	}
	r.results.put(key, rec)
	return rec, nil
}

// appendResults writes rows to the record: appended to the last shard while
// it stays under shardLimit, else to new shards. Each shard is written with
// the resourceVersion last seen, so a stale record fails (and is reloaded)
// instead of dropping lines. It returns the rows written; on an error some
// shards may have been written and those rows are recorded.
func (r *Reconciler) appendResults(ctx context.Context, c *voicev1alpha1.Campaign, rec *record, rows []*resultRow) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	type pending struct {
		sh    *shard
		isNew bool
		buf   bytes.Buffer
		rows  []*resultRow
	}
	newIdx := len(rec.shards)
	newShard := func() *pending {
		p := &pending{sh: &shard{name: ResultsName(c.Name, newIdx)}, isNew: true}
		newIdx++
		return p
	}
	var cur *pending
	if n := len(rec.shards); n > 0 {
		cur = &pending{sh: rec.shards[n-1]}
		cur.buf.WriteString(cur.sh.data)
	} else {
		cur = newShard()
		encodeRows(&cur.buf, resultsHeader)
	}
	todo := []*pending{cur}
	for _, row := range rows {
		var line bytes.Buffer
		encodeRows(&line, row.fields())
		if cur.buf.Len()+line.Len() > shardLimit {
			cur = newShard()
			todo = append(todo, cur)
		}
		cur.buf.Write(line.Bytes())
		cur.rows = append(cur.rows, row)
	}
	written := 0
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	for _, p := range todo {
		if len(p.rows) == 0 {
			continue
		}
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:       c.Namespace,
				Name:            p.sh.name,
				ResourceVersion: p.sh.resourceVersion,
				Labels:          map[string]string{voicev1alpha1.LabelCampaignResults: LabelValue(c.Name)},
				OwnerReferences: []metav1.OwnerReference{ownerRef(c)},
			},
			Data: map[string]string{ResultsKey: p.buf.String()},
		}
		var err error
		if p.isNew {
			err = r.Create(ctx, cm)
		} else {
			err = r.Update(ctx, cm)
		}
		resultsWrites.Inc()
		if err != nil {
			if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
				// Someone else wrote (or this view is stale): read it again.
				r.results.forget(key)
			}
			return written, fmt.Errorf("writing results ConfigMap %s: %w", cm.Name, err)
		}
		p.sh.resourceVersion, p.sh.data = cm.ResourceVersion, cm.Data[ResultsKey]
		if p.isNew {
			rec.shards = append(rec.shards, p.sh)
		}
		for _, row := range p.rows {
			rec.rows[row.key] = row
		}
		written += len(p.rows)
		contactsRecorded.Add(float64(len(p.rows)))
	}
	return written, nil
}

func ownerRef(c *voicev1alpha1.Campaign) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         voicev1alpha1.GroupVersion.String(),
		Kind:               "Campaign",
		Name:               c.Name,
		UID:                c.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}
