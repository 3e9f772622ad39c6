package piopiy

import (
	"fmt"
	"log/slog"
	"strconv"
)

// redacted replaces the secret wherever Credentials are printed.
const redacted = "REDACTED"

// Credentials identify a Piopiy app. v2 carries them inside every request
// body, which is why the Client builds those bodies itself and why every way
// of printing Credentials hides the secret.
type Credentials struct {
	// AppID is the numeric app id from the Piopiy dashboard.
	AppID int64
	// Secret is the app secret. It is only ever written into request bodies.
	Secret string
}

// String returns the credentials with the secret redacted.
func (c Credentials) String() string {
	return "piopiy.Credentials{AppID:" + strconv.FormatInt(c.AppID, 10) + ", Secret:" + strconv.Quote(c.secretMask()) + "}"
}

// GoString returns the credentials with the secret redacted, for %#v.
func (c Credentials) GoString() string { return c.String() }

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, ...) print the redacted
// form; without it %+v of a struct holding Credentials would reach the field.
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = fmt.Fprintf(f, "%q", c.String()) // a Formatter cannot report a failed write
		return
	}
	_, _ = f.Write([]byte(c.String()))
}

// MarshalJSON encodes the credentials with the secret redacted, so a struct
// that embeds them can be logged as JSON safely. Request bodies do not use it.
func (c Credentials) MarshalJSON() ([]byte, error) {
	b := []byte(`{"appid":`)
	b = strconv.AppendInt(b, c.AppID, 10)
	b = append(b, `,"secret":"`...)
	b = append(b, c.secretMask()...)
	b = append(b, `"}`...)
	return b, nil
}

// LogValue implements slog.LogValuer with the secret redacted.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("appid", c.AppID), slog.String("secret", c.secretMask()))
}

// Validate reports whether the credentials can possibly be accepted.
func (c Credentials) Validate() error {
	if c.AppID <= 0 {
		return validationError("credentials", "app id must be a positive number")
	}
	if c.Secret == "" {
		return validationError("credentials", "secret is empty")
	}
	return nil
}

// secretMask says whether a secret is set without saying what it is.
func (c Credentials) secretMask() string {
	if c.Secret == "" {
		return ""
	}
	return redacted
}
