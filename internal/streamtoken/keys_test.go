package streamtoken

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDeriveKeyIsBoundToNamespaceAndEndpoint(t *testing.T) {
	root := bytes.Repeat([]byte("r"), MinKeyLen)
	a, err := DeriveKey(root, "tenant-a", "bots")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := DeriveKey(root, "tenant-a", "bots")
	if !bytes.Equal(a, again) {
		t.Fatal("derivation is not deterministic")
	}
	for _, other := range [][2]string{{"tenant-b", "bots"}, {"tenant-a", "bots2"}, {"tenant-abots", ""}, {"tenant-a\x00bots", ""}} {
		k, err := DeriveKey(root, other[0], other[1])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, k) {
			t.Errorf("key of %q equals tenant-a/bots's", other)
		}
	}
	if bytes.Equal(a, root) || len(a) != MinKeyLen {
		t.Errorf("derived key %x", a)
	}
	if _, err := DeriveKey(root[:10], "a", "b"); err == nil {
		t.Error("short root accepted")
	}
}

// TestTokenFromNamespaceARefusedInB: a gateway of namespace B holds only B's
// derived key, so a token signed for (or by) namespace A does not verify.
func TestTokenFromNamespaceARefusedInB(t *testing.T) {
	root := bytes.Repeat([]byte("k"), MinKeyLen)
	keyA, _ := DeriveKey(root, "a", "bots")
	keyB, _ := DeriveKey(root, "b", "bots")
	now := time.Unix(1_700_000_000, 0)
	// A tenant of A, holding A's key, forges a token naming a Call in B.
	tok, err := Sign(keyA, Claims{Namespace: "b", Call: "victim", Attempt: 1, Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Keys{keyB}).Verify(tok, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("B's gateway: %v, want bad signature", err)
	}
}

func TestKeysVerifyDuringOverlap(t *testing.T) {
	old := bytes.Repeat([]byte("o"), MinKeyLen)
	cur := bytes.Repeat([]byte("n"), MinKeyLen)
	now := time.Unix(1_700_000_000, 0)
	c := Claims{Namespace: "ns", Call: "c", Attempt: 2, Expires: now.Add(time.Minute)}
	oldTok, _ := Sign(old, c)
	newTok, _ := Sign(cur, c)
	tests := []struct {
		name string
		keys Keys
		tok  string
		want error
	}{
		{"new key, new token", Keys{cur}, newTok, nil},
		{"overlap, old token", Keys{cur, old}, oldTok, nil},
		{"overlap, new token", Keys{cur, old}, newTok, nil},
		{"after overlap, old token", Keys{cur}, oldTok, ErrBadSignature},
		{"no keys", nil, newTok, ErrBadSignature},
		{"overlap, malformed", Keys{cur, old}, "x", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.keys.Verify(tt.tok, now)
			if !errors.Is(err, tt.want) && (err != nil || tt.want != nil) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if tt.want == nil && got.Call != "c" {
				t.Errorf("claims %+v", got)
			}
		})
	}
	// An expired token is expired whichever key signed it.
	if _, err := (Keys{cur, old}).Verify(oldTok, now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("expired old token: %v", err)
	}
}

func TestKeyFileReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	k1 := bytes.Repeat([]byte("1"), MinKeyLen)
	k2 := bytes.Repeat([]byte("2"), MinKeyLen)
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("key", k1)
	f, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Keys().equal(Keys{k1}) {
		t.Fatalf("keys %q", f.Keys())
	}
	if changed, err := f.Reload(); changed || err != nil {
		t.Fatalf("unchanged reload: %v %v", changed, err)
	}
	// Rotation: the new key and the old one beside it.
	write("key", k2)
	write(PreviousKeyFile, k1)
	if changed, err := f.Reload(); !changed || err != nil {
		t.Fatalf("rotation reload: %v %v", changed, err)
	}
	if !f.Keys().equal(Keys{k2, k1}) {
		t.Fatalf("keys during overlap %q", f.Keys())
	}
	// A broken file keeps the keys in use.
	write("key", []byte("short"))
	if _, err := f.Reload(); err == nil {
		t.Fatal("short key accepted")
	}
	if !f.Keys().equal(Keys{k2, k1}) {
		t.Fatalf("keys after a failed reload %q", f.Keys())
	}
	// End of the overlap.
	write("key", k2)
	if err := os.Remove(filepath.Join(dir, PreviousKeyFile)); err != nil {
		t.Fatal(err)
	}
	if changed, err := f.Reload(); !changed || err != nil {
		t.Fatalf("overlap end reload: %v %v", changed, err)
	}
	if !f.Keys().equal(Keys{k2}) {
		t.Fatalf("keys after overlap %q", f.Keys())
	}
}
