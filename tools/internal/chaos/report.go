package chaos

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idemlambda/idemlambda/tools/internal/chaos/faultproxy"
)

// Report is the checked history of one run.
type Report struct {
	Profile    Profile
	Target     Target
	Elapsed    time.Duration // the whole run, until every invocation returned
	FaultPhase time.Duration // faults on
	Deferred   int           // operations set aside for the drain phase
	Faults     faultproxy.Stats

	Ops, Attempts, Retries int
	PathOps                map[string]int // operations per path
	Behaviors              map[string]int // operations per first-attempt behavior
	Outcomes               map[string]int // attempts per outcome
	Late                   map[string]int // outcomes of released crashed attempts
	Effects, Charges       int            // handler runs; downstream charges (deduped by record key)
	Records                int            // records in the table at the end
	Unread                 int            // completed records holding no Payment (SQS acknowledgements): not compared

	// The invariants: all must be zero.
	Duplicates, Divergent, Lost, Stuck int
	// Unexpected lists attempts that failed with an error the workload
	// never provokes (payload mismatch, corrupt record, ...).
	Unexpected []string
	// Notes describes the first violations.
	Notes []string
}

const maxNotes = 20

func (r *Report) note(format string, args ...any) {
	if len(r.Notes) < maxNotes {
		r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
	}
}

// Violations is the number of invariant violations, unexpected errors
// included.
func (r *Report) Violations() int {
	return r.Duplicates + r.Divergent + r.Lost + r.Stuck + len(r.Unexpected)
}

// Summary is the report's last line.
func (r *Report) Summary() string {
	name := "chaos"
	if r.Target.Store() == "redis" {
		name = "chaos-redis"
	}
	return fmt.Sprintf("%s: ops=%d retries=%d faults=%d duplicates=%d divergent=%d lost=%d stuck=%d",
		name, r.Ops, r.Retries, r.Faults.Faults(), r.Duplicates, r.Divergent, r.Lost, r.Stuck)
}

// Print writes the report: profile, a table per fault kind, attempt
// outcomes, invariants, and the summary line last.
func (r *Report) Print(out io.Writer) {
	p := r.Profile
	fmt.Fprintf(out, "store: %s\n", r.Target.Store())
	fmt.Fprintf(out, "profile: seed=%d clients=%d ops/client=%d containers=%d paths=%s crash=%.2f slow=%.2f fail=%.2f dup=%.2f lease=%s short-lease=%s sdk-attempts=%d\n",
		p.Seed, p.Clients, p.OpsPerClient, p.Containers, strings.Join(p.Paths, ","), p.Crash, p.Slow, p.Fail, p.Dup, p.Lease, p.ShortLease, p.SDKAttempts)
	fmt.Fprintf(out, "elapsed: %s (faults on for %s); requests through the proxy: %d; operations set aside for the drain: %d\n\n",
		r.Elapsed.Round(time.Millisecond), r.FaultPhase.Round(time.Millisecond), r.Faults.Requests, r.Deferred)

	ops := []string{"PutItem", "GetItem", "UpdateItem", "DeleteItem"}
	kinds := faultproxy.Kinds
	if r.Target.Store() == "redis" {
		ops = []string{"EVALSHA", "EVAL"}
		kinds = tcpKinds
	}
	for _, op := range r.Faults.Operations() {
		if !contains(ops, op) {
			ops = append(ops, op)
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "fault\trate\tinjected\t%s\t\n", strings.Join(ops, "\t"))
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s\t%.3f\t%d\t", k, p.Faults[k], r.Faults.Total(k))
		for _, op := range ops {
			fmt.Fprintf(tw, "%d\t", r.Faults.Injected[k][op])
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "total\t\t%d\t", r.Faults.Faults())
	for _, op := range ops {
		n := 0
		for _, k := range kinds {
			n += r.Faults.Injected[k][op]
		}
		fmt.Fprintf(tw, "%d\t", n)
	}
	fmt.Fprintln(tw)
	_ = tw.Flush()
	fmt.Fprintln(out)

	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "attempt outcome\tcount\t\n")
	for _, k := range sortedKeys(r.Outcomes) {
		fmt.Fprintf(tw, "%s\t%d\t\n", k, r.Outcomes[k])
	}
	for _, k := range sortedKeys(r.Late) {
		fmt.Fprintf(tw, "released crashed run: %s\t%d\t\n", k, r.Late[k])
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\noperations per path: %s; misbehaving first attempts: %s\n", kv(r.PathOps), kv(r.Behaviors))
	fmt.Fprintf(out, "handler runs (ledger effects): %d; downstream charges (deduped by record key): %d; records in the store: %d (%d compared with the answers; %d SQS acknowledgements)\n\n",
		r.Effects, r.Charges, r.Records, r.Records-r.Unread-r.Stuck, r.Unread)

	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "invariant\tviolations\t\n")
	fmt.Fprintf(tw, "duplicates\t%d\t\n", r.Duplicates)
	fmt.Fprintf(tw, "divergent\t%d\t\n", r.Divergent)
	fmt.Fprintf(tw, "lost\t%d\t\n", r.Lost)
	fmt.Fprintf(tw, "stuck\t%d\t\n", r.Stuck)
	fmt.Fprintf(tw, "unexpected errors\t%d\t\n", len(r.Unexpected))
	_ = tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(out, "  %s\n", n)
	}
	for i, u := range r.Unexpected {
		if i == maxNotes {
			break
		}
		fmt.Fprintf(out, "  unexpected: %s\n", u)
	}
	fmt.Fprintln(out, r.Summary())
}

func kv(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
