package chaos

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// path is one way an operation reaches the library.
type path interface {
	name() string
	// call makes one attempt of a through a.container. It returns the final
	// answer's bytes and whether it is the attempt's own run (not a
	// replay), or an error after which the caller retries.
	call(ctx context.Context, w *workload, a *attempt) (body []byte, own bool, err error)
}

var pathMakers = map[string]func() path{
	"do":   func() path { return doPath{} },
	"wrap": func() path { return wrapPath{} },
}

// Paths lists the available operation paths.
func Paths() []string {
	names := make([]string, 0, len(pathMakers))
	for n := range pathMakers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func pathByName(name string) (func() path, bool) {
	mk, ok := pathMakers[name]
	return mk, ok
}

// doPath: a payment through idempotent.Do, keyed by the operation key and
// validated by its amount.
type doPath struct{}

func (doPath) name() string { return "do" }

func (doPath) call(ctx context.Context, w *workload, a *attempt) ([]byte, bool, error) {
	res, err := idempotent.Do(ctx, a.container.guard("chaos", a.lease, w.logger), "payment", a.op.key, func(ctx context.Context) (Payment, error) {
		return w.handle(ctx, a)
	}, idempotent.WithFingerprint(a.op.key+"/"+strconv.Itoa(a.op.amount)))
	if err != nil {
		return nil, false, err
	}
	return mustJSON(res), a.run != "" && res.Run == a.run, nil
}

// PaymentEvent is the event of the wrap path.
type PaymentEvent struct {
	PaymentID string `json:"paymentId"`
	Amount    int    `json:"amount"`
}

type attemptKey struct{}

// wrapPath: a payment event through a handler built with idempotent.Wrap
// (one per container and lease), keyed by WithKeyPath and validated by
// WithPayloadPath.
type wrapPath struct{}

func (wrapPath) name() string { return "wrap" }

func (wrapPath) call(ctx context.Context, w *workload, a *attempt) ([]byte, bool, error) {
	h := a.container.wrapped(w, a.lease)
	res, err := h(context.WithValue(ctx, attemptKey{}, a), PaymentEvent{PaymentID: a.op.key, Amount: a.op.amount})
	if err != nil {
		return nil, false, err
	}
	return mustJSON(res), a.run != "" && res.Run == a.run, nil
}

type wrapHandler = func(context.Context, PaymentEvent) (Payment, error)

func (c *container) wrapped(w *workload, lease time.Duration) wrapHandler {
	key := "wrap/" + lease.String()
	if h, ok := c.paths.Load(key); ok {
		return h.(wrapHandler)
	}
	h := idempotent.Wrap(c.guard("chaos", lease, w.logger), func(ctx context.Context, _ PaymentEvent) (Payment, error) {
		return w.handle(ctx, ctx.Value(attemptKey{}).(*attempt))
	}, idempotent.WithKeyPath("paymentId"), idempotent.WithPayloadPath("[paymentId, amount]"))
	actual, _ := c.paths.LoadOrStore(key, h)
	return actual.(wrapHandler)
}
