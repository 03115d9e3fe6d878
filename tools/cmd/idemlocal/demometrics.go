package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// emfCollector keeps, out of the functions' log stream, the CloudWatch
// Embedded Metric Format lines they print (one per invocation, see
// idempotent/emf), so the demo can show the metrics it produced.
type emfCollector struct {
	mu    sync.Mutex
	buf   []byte
	lines []emfLine
}

// emfLine is one EMF record and the function (logical id) that wrote it.
type emfLine struct {
	fn, json string
}

func (c *emfCollector) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, b...)
	for {
		i := bytes.IndexByte(c.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(c.buf[:i])
		c.buf = c.buf[i+1:]
		// Lines come as "[LogicalId] <what the function printed>".
		fn, rest, ok := strings.Cut(line, "] ")
		// An EMF record is a JSON object with an _aws member (emf writes
		// "level" and "timestamp" before it).
		if ok && strings.HasPrefix(fn, "[") && strings.HasPrefix(rest, "{") && strings.Contains(rest, `"_aws":{`) {
			c.lines = append(c.lines, emfLine{fn: fn[1:], json: rest})
		}
	}
}

// print writes the metrics summed per function, and one record as written.
func (c *emfCollector) print(w io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lines) == 0 {
		fmt.Fprintln(w, "no metrics were written")
		return
	}
	type fnSum struct {
		names []string
		sum   map[string]float64
		n     int
	}
	var order []string
	sums := map[string]*fnSum{}
	for _, l := range c.lines {
		var doc struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Metrics []struct{ Name string }
				}
			} `json:"_aws"`
		}
		var root map[string]any
		if json.Unmarshal([]byte(l.json), &doc) != nil || json.Unmarshal([]byte(l.json), &root) != nil {
			continue
		}
		s := sums[l.fn]
		if s == nil {
			s = &fnSum{sum: map[string]float64{}}
			sums[l.fn] = s
			order = append(order, l.fn)
		}
		s.n++
		for _, d := range doc.AWS.CloudWatchMetrics {
			for _, m := range d.Metrics {
				v, _ := root[m.Name].(float64)
				if _, seen := s.sum[m.Name]; !seen {
					s.names = append(s.names, m.Name)
				}
				s.sum[m.Name] = math.Round((s.sum[m.Name]+v)*1000) / 1000
			}
		}
	}
	for _, fn := range order {
		s := sums[fn]
		parts := make([]string, 0, len(s.names))
		for _, n := range s.names {
			parts = append(parts, n+"="+strconv.FormatFloat(s.sum[n], 'f', -1, 64))
		}
		fmt.Fprintf(w, "%s (%d records): %s\n", fn, s.n, strings.Join(parts, " "))
	}
	fmt.Fprintf(w, "\nOne record as the function printed it (CloudWatch turns it into metrics; no API call):\n%s\n", c.lines[0].json)
}
