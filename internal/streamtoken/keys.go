package streamtoken

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// deriveInfo prefixes the HKDF info of an endpoint key: a new use of the
// root key gets another prefix, so keys derived for one purpose never equal
// keys for another.
const deriveInfo = "callfleet stream token v1\x00"

// DeriveKey returns the key that signs and verifies the stream tokens of one
// StreamEndpoint: HKDF-SHA256 of the root key, bound to the namespace and the
// endpoint. A gateway holding it can verify (and so forge) tokens for its own
// endpoint only; the root stays with the manager.
func DeriveKey(root []byte, namespace, endpoint string) ([]byte, error) {
	if len(root) < MinKeyLen {
		return nil, fmt.Errorf("stream token root key is %d bytes, want at least %d", len(root), MinKeyLen)
	}
	// NUL cannot occur in Kubernetes names: the pair is unambiguous.
	info := deriveInfo + namespace + "\x00" + endpoint
	return hkdf.Key(sha256.New, root, nil, info, MinKeyLen)
}

// Keys are the keys a gateway accepts: the current one and, during a
// rotation, the previous ones.
type Keys [][]byte

// Verify checks token against each key in turn, as Verify does for one. A
// token signed with none of them is ErrBadSignature.
func (ks Keys) Verify(token string, now time.Time) (Claims, error) {
	err := ErrBadSignature
	for _, k := range ks {
		var c Claims
		if c, err = Verify(k, token, now); !errors.Is(err, ErrBadSignature) {
			return c, err
		}
	}
	return Claims{}, err
}

func (ks Keys) equal(o Keys) bool {
	if len(ks) != len(o) {
		return false
	}
	for i := range ks {
		if !bytes.Equal(ks[i], o[i]) {
			return false
		}
	}
	return true
}

// PreviousKeyFile is the name, beside the current key file, of the key that
// still verifies during a rotation (the Secret's key "previous").
const PreviousKeyFile = "previous"

// KeyFile holds the keys read from a mounted Secret: the current key file
// and, beside it, PreviousKeyFile when present. Kubernetes updates a mounted
// Secret in place, so Watch rereads the files and swaps the keys without a
// restart; connections already verified are not affected.
type KeyFile struct {
	path string

	mu   sync.RWMutex
	keys Keys
}

// LoadKeyFile reads the key at path (and the previous key beside it).
func LoadKeyFile(path string) (*KeyFile, error) {
	f := &KeyFile{path: path}
	ks, err := f.read()
	if err != nil {
		return nil, err
	}
	f.keys = ks
	return f, nil
}

// Keys returns the keys accepted now.
func (f *KeyFile) Keys() Keys {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.keys
}

// Reload rereads the files. It reports whether the keys changed; on an error
// the keys in use stay (a half-written or missing file must not lock every
// caller out).
func (f *KeyFile) Reload() (bool, error) {
	ks, err := f.read()
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ks.equal(f.keys) {
		return false, nil
	}
	f.keys = ks
	return true, nil
}

// Watch reloads every interval until ctx ends, calling changed after a
// change and failed after an error.
func (f *KeyFile) Watch(ctx context.Context, interval time.Duration, changed func(Keys), failed func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := f.Reload()
		switch {
		case err != nil && failed != nil:
			failed(err)
		case ok && changed != nil:
			changed(f.Keys())
		}
	}
}

func (f *KeyFile) read() (Keys, error) {
	cur, err := readKey(f.path)
	if err != nil {
		return nil, err
	}
	ks := Keys{cur}
	prev, err := readKey(filepath.Join(filepath.Dir(f.path), PreviousKeyFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	case !bytes.Equal(prev, cur):
		ks = append(ks, prev)
	}
	return ks, nil
}

// readKey reads one key file. Surrounding whitespace is trimmed: a key
// written by echo or kubectl keeps a trailing newline. The messages name no
// purpose: the gateway reads its monitor key files with KeyFile too.
func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	k := []byte(strings.TrimSpace(string(b)))
	if len(k) < MinKeyLen {
		return nil, fmt.Errorf("key file %s is %d bytes, want at least %d", filepath.Base(path), len(k), MinKeyLen)
	}
	return k, nil
}
