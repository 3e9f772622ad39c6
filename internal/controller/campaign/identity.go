package campaign

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// maxNameLen keeps Call names usable as label values and DNS labels.
const maxNameLen = 63

// keyHashLen is how many base32 characters of a contact key's SHA-256 name
// its Calls: 50 bits, so a 100,000-contact list has a collision chance
// near 1e-5, and a collision is caught (the Call's key annotation differs)
// rather than ringing the wrong person.
const keyHashLen = 10

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// shortName returns name when it fits in limit, else a prefix of it, a dash
// and 8 hex digits of its FNV-1a hash, together exactly limit long (or
// shorter, trailing dashes and dots trimmed).
func shortName(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	sum := fmt.Sprintf("%08x", h.Sum32())
	prefix := strings.TrimRight(name[:limit-len(sum)-1], "-.")
	return prefix + "-" + sum
}

// KeyHash is the DNS-safe hash of a contact key used in Call names and
// the LabelContactHash label.
func KeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return lowerBase32.EncodeToString(sum[:])[:keyHashLen]
}

// CallName is the name of attempt n (1 for the first) of the contact with
// key: `<campaign>-<hash of key>-<n>`, the Campaign part shortened and
// hashed when the whole would pass 63 characters. It depends on the key,
// never on the contact's position, so editing the list renames nothing,
// and a create repeated after a crash meets the Call already made.
func CallName(campaign, key string, attempt int32) string {
	suffix := "-" + KeyHash(key) + "-" + strconv.Itoa(int(attempt))
	return shortName(campaign, maxNameLen-len(suffix)) + suffix
}

// LabelValue is the value of LabelCampaign for a Campaign name.
func LabelValue(campaign string) string { return shortName(campaign, maxNameLen) }

// ResultsName is the name of results shard i of a Campaign.
func ResultsName(campaign string, i int) string {
	suffix := fmt.Sprintf("-results-%03d", i)
	return shortName(campaign, 253-len(suffix)) + suffix
}

// attemptOf reads a Call's contact key and attempt number.
func attemptOf(call *voicev1alpha1.Call) (key string, n int32, ok bool) {
	key, ok = call.Annotations[voicev1alpha1.AnnotationContactKey]
	if !ok || key == "" {
		return "", 0, false
	}
	v, err := strconv.ParseInt(call.Annotations[voicev1alpha1.AnnotationAttempt], 10, 32)
	if err != nil || v < 1 {
		return "", 0, false
	}
	return key, int32(v), true
}
