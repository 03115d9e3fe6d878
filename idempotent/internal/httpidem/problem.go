package httpidem

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// ProblemBase is the URI the problem types of the library point into: the
// HTTP page of the documentation, one anchor per type.
const ProblemBase = "https://github.com/idemlambda/idemlambda/blob/main/docs/http.md#"

// Problem is an RFC 9457 problem detail made by the library.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// RetryAfter, when positive, is sent as the Retry-After header in
	// whole seconds.
	RetryAfter time.Duration `json:"-"`
}

// Body returns the problem as JSON.
func (p Problem) Body() string {
	b, err := json.Marshal(p)
	if err != nil { // cannot happen: only strings and an int
		return `{"title":"Internal Server Error","status":500}`
	}
	return string(b)
}

// Headers returns the response headers of the problem, canonical names.
func (p Problem) Headers() map[string]string {
	h := map[string]string{
		"Content-Type":  ContentTypeProblem,
		"Cache-Control": "no-store",
	}
	if p.RetryAfter > 0 {
		h["Retry-After"] = strconv.FormatInt(int64((p.RetryAfter+time.Second-1)/time.Second), 10)
	}
	return h
}

// Problem types.
const (
	TypeInvalidKey         = ProblemBase + "invalid-idempotency-key"
	TypeMissingKey         = ProblemBase + "missing-idempotency-key"
	TypeInvalidBody        = ProblemBase + "invalid-body"
	TypeBodyTooLarge       = ProblemBase + "body-too-large"
	TypePayloadMismatch    = ProblemBase + "payload-mismatch"
	TypeInProgress         = ProblemBase + "in-progress"
	TypeStoreError         = ProblemBase + "store-unavailable"
	TypeOutcomeUnknown     = ProblemBase + "outcome-unknown"
	TypeNotStored          = ProblemBase + "response-not-stored"
	TypeCorruptRecord      = ProblemBase + "corrupt-record"
	TypeConfig             = ProblemBase + "configuration-error"
	TypeUnidentifiedCaller = ProblemBase + "unidentified-caller"
	TypeInternal           = ProblemBase + "internal-error"
)

func newProblem(status int, typ, detail string) Problem {
	return Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail}
}
