package chaos

import (
	"sync"
)

// Effect is one side effect of a handler run, as recorded in the Ledger.
type Effect struct {
	// Key is the operation's idempotency key (before hashing).
	Key string
	// RecordKey is the record id the run got from idempotent.RecordIDFromContext.
	RecordKey string
	// Caller and Attempt identify the call: which client (or duplicate) and
	// its how-manieth attempt.
	Caller  string
	Attempt int
	// Run is the run's unique id; it is part of the result, so a replay
	// tells which run it replays.
	Run string
	// Container is the simulated Lambda container that ran it.
	Container int
	// Behavior is what the run was made to do: "", "crash", "slow", "fail".
	Behavior string
}

// Ledger records the handlers' side effects and which runs completed. It is
// safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	effects []Effect
	// charges is the handlers' downstream write, keyed by record key as the
	// contract advises: a second run after a crash finds its charge there
	// and does not double it.
	charges map[string]string // record key -> run that charged
	// committed: op key -> runs that completed (own result returned).
	committed map[string]map[string]bool
	done      map[string]chan struct{} // op key -> closed at its first commit
}

// NewLedger returns an empty Ledger.
func NewLedger() *Ledger {
	return &Ledger{
		charges:   make(map[string]string),
		committed: make(map[string]map[string]bool),
		done:      make(map[string]chan struct{}),
	}
}

// Begin records the start of a run.
func (l *Ledger) Begin(e Effect) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.effects = append(l.effects, e)
}

// Charge is the handler's idempotent downstream write: the first run of a
// record key charges, later runs find the charge and reuse it. It returns
// the run that holds the charge.
func (l *Ledger) Charge(recordKey, run string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.charges[recordKey]; ok {
		return r
	}
	l.charges[recordKey] = run
	return run
}

// Commit marks run of key as completed.
func (l *Ledger) Commit(key, run string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.committed[key]
	if m == nil {
		m = make(map[string]bool)
		l.committed[key] = m
	}
	m[run] = true
	l.answeredLocked(key)
}

// Answered records that some caller of key got a final answer, which means
// some run of key completed.
func (l *Ledger) Answered(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answeredLocked(key)
}

func (l *Ledger) answeredLocked(key string) {
	c := l.doneLocked(key)
	select {
	case <-c:
	default:
		close(c)
	}
}

// Done returns a channel closed once some run of key is known to have
// completed (committed or answered).
func (l *Ledger) Done(key string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.doneLocked(key)
}

func (l *Ledger) doneLocked(key string) chan struct{} {
	c := l.done[key]
	if c == nil {
		c = make(chan struct{})
		l.done[key] = c
	}
	return c
}

// Effects returns a copy of the recorded effects.
func (l *Ledger) Effects() []Effect {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Effect(nil), l.effects...)
}

// Committed returns the completed runs of key.
func (l *Ledger) Committed(key string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var runs []string
	for r := range l.committed[key] {
		runs = append(runs, r)
	}
	return runs
}

// Charges is the number of downstream charges made.
func (l *Ledger) Charges() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.charges)
}
