package idemhttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// response is what is stored for net/http: status, header, body and
// trailers, exactly as the handler wrote them.
//
// Stored form (format 2, MarshalJSON): a JSON object
//
//	{"v":2,"status":200,"header":[["<name>","<value>"],...],"trailer":[...],"body":"<bytes>"}
//
// in which every name, value and the body are base64 (JSON's form of
// bytes), so that header bytes that are not valid UTF-8 come back as they
// were; a name with several values has one pair per value, in order. A
// response delivered while it was written and not kept ("delivered") is
// stored as {"v":2,"status":S,"header":[],"delivered":true}: the key is
// completed, and a duplicate gets 410 (httpidem.TypeNotStored).
//
// Format 1, written before, is {"status":S,"header":{"Name":["v"]},"body":"..."}
// (http.Header as JSON); it still decodes. "header" is always an array in
// format 2, so a reader of format 1 refuses a format-2 record (a corrupt
// record, 500) rather than replay a marker as an empty 200.
type response struct {
	Status  int
	Header  http.Header
	Trailer http.Header // trailer values by name; names declared in Header["Trailer"] are sent as declared, others with http.TrailerPrefix
	Body    []byte
	sent    bool // already written to the client (the first response, streamed or teed)
	// delivered: sent while written and not kept whole; stored as the
	// marker.
	delivered bool
}

// formatVersion is the stored format MarshalJSON writes.
const formatVersion = 2

type storedV2 struct {
	V         int         `json:"v"`
	Status    int         `json:"status"`
	Header    [][2][]byte `json:"header"`
	Trailer   [][2][]byte `json:"trailer,omitempty"`
	Body      []byte      `json:"body,omitempty"`
	Delivered bool        `json:"delivered,omitempty"`
}

// MarshalJSON writes format 2.
func (p *response) MarshalJSON() ([]byte, error) {
	s := storedV2{V: formatVersion, Status: p.Status, Header: pairs(p.Header), Delivered: p.delivered}
	if !p.delivered {
		s.Trailer = pairs(p.Trailer)
		if len(s.Trailer) == 0 {
			s.Trailer = nil
		}
		s.Body = p.Body
	}
	return json.Marshal(s)
}

// UnmarshalJSON reads format 2 and format 1; another version is an error
// (the core reports a corrupt record: fail closed).
func (p *response) UnmarshalJSON(data []byte) error {
	var probe struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return err
	}
	if probe.V == nil { // format 1
		var v1 struct {
			Status int         `json:"status"`
			Header http.Header `json:"header"`
			Body   []byte      `json:"body"`
		}
		if err := json.Unmarshal(data, &v1); err != nil {
			return err
		}
		*p = response{Status: v1.Status, Header: v1.Header, Body: v1.Body}
		return nil
	}
	if *probe.V != formatVersion {
		return fmt.Errorf("idemhttp: stored response format %d is not known to this version", *probe.V)
	}
	var s storedV2
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s.Header == nil {
		return errors.New("idemhttp: stored response has no header list")
	}
	*p = response{Status: s.Status, Header: unpairs(s.Header), Trailer: unpairs(s.Trailer), Body: s.Body, delivered: s.Delivered}
	return nil
}

// pairs lists h as (name, value) pairs, names sorted, values in order;
// never nil.
func pairs(h http.Header) [][2][]byte {
	out := make([][2][]byte, 0, len(h))
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range h[k] {
			out = append(out, [2][]byte{[]byte(k), []byte(v)})
		}
	}
	return out
}

func unpairs(ps [][2][]byte) http.Header {
	if len(ps) == 0 {
		return nil
	}
	h := make(http.Header, len(ps))
	for _, kv := range ps {
		k := string(kv[0])
		h[k] = append(h[k], string(kv[1]))
	}
	return h
}

// write sends p: header, status, body, then the trailers (declared ones by
// name, undeclared ones with http.TrailerPrefix, as the handler set them).
func (p *response) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range p.Header {
		h[k] = v
	}
	w.WriteHeader(p.Status)
	if len(p.Body) > 0 {
		_, _ = w.Write(p.Body)
	}
	writeTrailers(h, p.Header, p.Trailer)
}

func writeTrailers(dst, header, trailer http.Header) {
	if len(trailer) == 0 {
		return
	}
	declared := declaredTrailers(header)
	for k, v := range trailer {
		if _, ok := declared[k]; ok {
			dst[k] = v
		} else {
			dst[http.TrailerPrefix+k] = v
		}
	}
}

// declaredTrailers is the set of canonical names in header's Trailer
// values.
func declaredTrailers(header http.Header) map[string]struct{} {
	var out map[string]struct{}
	for _, v := range header["Trailer"] {
		for n := range strings.SplitSeq(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				if out == nil {
					out = make(map[string]struct{})
				}
				out[http.CanonicalHeaderKey(n)] = struct{}{}
			}
		}
	}
	return out
}

// trailersOf collects the trailers a handler set in h (the header map it
// wrote to) after sending header: the declared names and the
// http.TrailerPrefix ones. nil when none.
func trailersOf(h, header http.Header) http.Header {
	var out http.Header
	add := func(k string, v []string) {
		if out == nil {
			out = make(http.Header)
		}
		out[k] = slices.Clone(v)
	}
	for k := range declaredTrailers(header) {
		if v, ok := h[k]; ok {
			add(k, v)
		}
	}
	for k, v := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && name != "" {
			add(http.CanonicalHeaderKey(name), v)
		}
	}
	return out
}
