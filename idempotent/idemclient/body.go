package idemclient

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// drainLimit is how much of a discarded response body is read before it is
// closed, so that the connection can be reused.
const drainLimit = 16 << 10

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// drain reads a bounded part of a discarded response's body and closes it,
// so that its connection can be reused.
func drain(resp *http.Response) {
	if resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	_ = resp.Body.Close()
}

// rewinder gives each attempt the request body.
type rewinder struct {
	body    io.ReadCloser
	getBody func() (io.ReadCloser, error)
	length  int64
	buf     []byte
	once    bool // the body can be sent once only
}

func newRewinder(req *http.Request, limit int64) (*rewinder, error) {
	w := &rewinder{body: req.Body, getBody: req.GetBody, length: req.ContentLength}
	if req.Body == nil || req.Body == http.NoBody {
		w.getBody = nil // no body on any attempt
		return w, nil
	}
	if req.GetBody != nil {
		return w, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		_ = req.Body.Close()
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(b)) > limit {
		// Too long to buffer: sent once, from what was read and the rest.
		w.once = true
		w.body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), req.Body), req.Body}
		return w, nil
	}
	_ = req.Body.Close()
	w.buf = b
	if w.length <= 0 {
		w.length = int64(len(b))
	}
	w.getBody = func() (io.ReadCloser, error) {
		if len(w.buf) == 0 {
			return http.NoBody, nil
		}
		return io.NopCloser(bytes.NewReader(w.buf)), nil
	}
	w.body, _ = w.getBody()
	return w, nil
}

func (w *rewinder) rewindable() bool { return !w.once }

// first returns the body of the first attempt.
func (w *rewinder) first() io.ReadCloser { return w.body }

// again returns the body of a retry.
func (w *rewinder) again() (io.ReadCloser, error) {
	if w.getBody == nil {
		return w.body, nil // nil or NoBody: no body to rewind
	}
	return w.getBody()
}

// peek reads up to n bytes of resp's body and puts them back in front of
// the rest, so that whoever reads the body next gets all of it (and the
// error that ended the read, if one did). It returns what it read.
func peek(resp *http.Response, n int64) []byte {
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, n))
	if err == nil && int64(len(b)) < n {
		err = io.EOF // the whole body
	}
	resp.Body = &peeked{head: b, err: err, rc: resp.Body}
	return b
}

// peeked is a body whose head was read ahead: the head, then err if the
// read ahead ended with one (io.EOF: the head is the whole body), else the
// rest of rc.
type peeked struct {
	head []byte
	err  error
	rc   io.ReadCloser
}

func (p *peeked) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	if p.err != nil {
		return 0, p.err
	}
	return p.rc.Read(b)
}

func (p *peeked) Close() error { return p.rc.Close() }
