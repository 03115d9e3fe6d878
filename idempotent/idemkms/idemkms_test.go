package idemkms_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemkms"
	"github.com/idemlambda/idemlambda/idempotent/storetest"
)

// The keys of kms/seed.yaml.
const (
	aliasTest    = "alias/idemlambda-test"
	aliasRotate  = "alias/idemlambda-rotate"
	aliasDisable = "alias/idemlambda-disable"
	keyFirst     = "6f0d7a52-3c1e-4d8b-9a51-2b7e1c0f4a01"
	keySecond    = "6f0d7a52-3c1e-4d8b-9a51-2b7e1c0f4a02"
	keyDisable   = "6f0d7a52-3c1e-4d8b-9a51-2b7e1c0f4a03"
)

// localKMS is a client of the local-kms that kms/ctl.sh runs.
func localKMS(t *testing.T) *kms.Client { return localKMSFor(t) }

func localKMSFor(t testing.TB) *kms.Client {
	t.Helper()
	ep := os.Getenv("AWS_ENDPOINT_URL_KMS")
	if ep == "" {
		t.Fatal("AWS_ENDPOINT_URL_KMS is not set: run the tests under kms/ctl.sh run -- go test ... (make test does)")
	}
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(ep),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// counting counts the KMS calls a store makes and can fail them.
type counting struct {
	idemkms.KMSAPI
	generate, decrypt atomic.Int64
	decryptErr        error
	generateErr       error
}

func (c *counting) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, o ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	c.generate.Add(1)
	if c.generateErr != nil {
		return nil, c.generateErr
	}
	return c.KMSAPI.GenerateDataKey(ctx, in, o...)
}

func (c *counting) Decrypt(ctx context.Context, in *kms.DecryptInput, o ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	c.decrypt.Add(1)
	if c.decryptErr != nil {
		return nil, c.decryptErr
	}
	return c.KMSAPI.Decrypt(ctx, in, o...)
}

func wrap(t *testing.T, next idempotent.Store, c idemkms.KMSAPI, key string, optFns ...func(*idemkms.Options)) *idemkms.Store {
	t.Helper()
	s, err := idemkms.Wrap(next, c, key, optFns...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	c := localKMS(t)
	storetest.Run(t, func(t *testing.T) idempotent.Store {
		return wrap(t, idempotent.NewMemoryStore(), c, aliasTest)
	})
}

// spy keeps the Data the inner store was given per record id and can return
// other Data on reads: a record edited or copied in the table.
type spy struct {
	idempotent.Store
	mu      sync.Mutex
	stored  map[string][]byte
	replace map[string][]byte
}

func newSpy() *spy {
	return &spy{Store: idempotent.NewMemoryStore(), stored: map[string][]byte{}, replace: map[string][]byte{}}
}

func (s *spy) Complete(ctx context.Context, rec idempotent.Record) error {
	s.mu.Lock()
	s.stored[rec.ID] = bytes.Clone(rec.Data)
	s.mu.Unlock()
	return s.Store.Complete(ctx, rec)
}

func (s *spy) edit(r *idempotent.Record) *idempotent.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.replace[r.ID]; ok && r.Status == idempotent.StatusCompleted {
		cp := *r
		cp.Data = d
		return &cp
	}
	return r
}

func (s *spy) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	r, err := s.Store.Get(ctx, key)
	if r != nil {
		r = s.edit(r)
	}
	return r, err
}

func (s *spy) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	r, ok, err := s.Store.Acquire(ctx, rec, now)
	if r != nil {
		r = s.edit(r)
	}
	return r, ok, err
}

func (s *spy) only(t *testing.T) (string, []byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.stored) != 1 {
		t.Fatalf("%d records stored, want 1", len(s.stored))
	}
	for k, v := range s.stored {
		return k, v
	}
	return "", nil
}

func (s *spy) idOf(t *testing.T, before map[string]bool) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.stored {
		if !before[k] {
			return k
		}
	}
	t.Fatal("no new record")
	return ""
}

func (s *spy) ids() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]bool{}
	for k := range s.stored {
		m[k] = true
	}
	return m
}

// run does key through the core; it reports whether the handler ran.
func run(t *testing.T, store idempotent.Store, key, answer string) (string, bool, error) {
	t.Helper()
	ran := false
	v, err := idempotent.Do(context.Background(), idempotent.New(store), "pay", key, func(context.Context) (string, error) {
		ran = true
		return answer, nil
	})
	return v, ran, err
}

func TestStoredResultIsEncryptedAndReplays(t *testing.T) {
	inner := newSpy()
	s := wrap(t, inner, localKMS(t), aliasTest)
	secret := "card 4111-1111-1111-1111 confirmed"
	if v, ran, err := run(t, s, "p-1", secret); err != nil || !ran || v != secret {
		t.Fatalf("first: %q %v %v", v, ran, err)
	}
	_, data := inner.only(t)
	if bytes.Contains(data, []byte("4111")) || !bytes.HasPrefix(data, []byte("IK\x01")) {
		t.Fatalf("the store was given %q, want the sealed form", data)
	}
	// A cold container (new wrapper, same table) replays it.
	cold := wrap(t, inner, localKMS(t), aliasTest)
	if v, ran, err := run(t, cold, "p-1", "other"); err != nil || ran || v != secret {
		t.Fatalf("replay: %q ran=%v %v", v, ran, err)
	}
}

func TestWarmCacheMakesNoKMSCall(t *testing.T) {
	c := &counting{KMSAPI: localKMS(t)}
	inner := newSpy()
	s := wrap(t, inner, c, aliasTest)
	for _, k := range []string{"a", "b", "c", "d"} {
		if _, _, err := run(t, s, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
		if _, ran, err := run(t, s, k, "again"); err != nil || ran {
			t.Fatalf("replay of %s: ran=%v %v", k, ran, err)
		}
	}
	if g, d := c.generate.Load(), c.decrypt.Load(); g != 1 || d != 0 {
		t.Fatalf("warm container: %d GenerateDataKey, %d Decrypt; want 1, 0", g, d)
	}
	// A cold container decrypts the one data key once, then replays from its cache.
	c2 := &counting{KMSAPI: localKMS(t)}
	cold := wrap(t, inner, c2, aliasTest)
	for _, k := range []string{"a", "b", "c", "d"} {
		if v, ran, err := run(t, cold, k, "again"); err != nil || ran || v != "v-"+k {
			t.Fatalf("cold replay of %s: %q ran=%v %v", k, v, ran, err)
		}
	}
	if g, d := c2.generate.Load(), c2.decrypt.Load(); g != 0 || d != 1 {
		t.Fatalf("cold container: %d GenerateDataKey, %d Decrypt; want 0, 1", g, d)
	}
}

func TestCacheBounds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	tests := []struct {
		name    string
		opt     func(*idemkms.Options)
		advance time.Duration
		want    int64
	}{
		{"uses", func(o *idemkms.Options) { o.MaxUses = 2 }, 0, 3},
		{"age", func(o *idemkms.Options) { o.MaxAge = time.Minute }, time.Minute, 5},
		{"off", func(o *idemkms.Options) { o.MaxAge = 0 }, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &counting{KMSAPI: localKMS(t)}
			s := wrap(t, newSpy(), c, aliasTest, tt.opt, func(o *idemkms.Options) { o.Clock = clock })
			for _, k := range []string{"a", "b", "c", "d", "e"} {
				if _, _, err := run(t, s, k, k); err != nil {
					t.Fatal(err)
				}
				now = now.Add(tt.advance)
			}
			if g := c.generate.Load(); g != tt.want {
				t.Fatalf("%d GenerateDataKey for 5 records, want %d", g, tt.want)
			}
		})
	}
}

func TestUnopenableRecordIsCorruptAndHandlerDoesNotRun(t *testing.T) {
	tests := []struct {
		name string
		edit func(own, other []byte) []byte
	}{
		{"copied from another id", func(_, other []byte) []byte { return other }},
		{"tampered", func(own, _ []byte) []byte { b := bytes.Clone(own); b[len(b)-1] ^= 1; return b }},
		{"plaintext", func([]byte, []byte) []byte { return []byte(`"ok"`) }},
		{"truncated", func(own, _ []byte) []byte { return own[:7] }},
		{"empty", func([]byte, []byte) []byte { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := newSpy()
			s := wrap(t, inner, localKMS(t), aliasTest)
			if _, _, err := run(t, s, "victim", "mine"); err != nil {
				t.Fatal(err)
			}
			victim, own := inner.only(t)
			before := inner.ids()
			if _, _, err := run(t, s, "other", "theirs"); err != nil {
				t.Fatal(err)
			}
			other := inner.stored[inner.idOf(t, before)]
			inner.mu.Lock()
			inner.replace[victim] = tt.edit(own, other)
			inner.mu.Unlock()
			cold := wrap(t, inner, localKMS(t), aliasTest)
			for name, st := range map[string]idempotent.Store{"warm": s, "cold": cold} {
				v, ran, err := run(t, st, "victim", "rerun")
				var ce *idempotent.CorruptRecordError
				if ran || !errors.As(err, &ce) || !errors.Is(err, idempotent.ErrCorruptRecord) || ce.RecordID != victim {
					t.Fatalf("%s: %q ran=%v err=%v, want a *CorruptRecordError for %s and no run", name, v, ran, err, victim)
				}
			}
		})
	}
}

func TestWrongEncryptionContextIsCorrupt(t *testing.T) {
	inner := newSpy()
	if _, _, err := run(t, wrap(t, inner, localKMS(t), aliasTest), "p", "v"); err != nil {
		t.Fatal(err)
	}
	other := wrap(t, inner, localKMS(t), aliasTest, func(o *idemkms.Options) {
		o.EncryptionContext = map[string]string{"purpose": "something-else"}
	})
	_, ran, err := run(t, other, "p", "rerun")
	if ran || !errors.Is(err, idempotent.ErrCorruptRecord) {
		t.Fatalf("ran=%v err=%v, want ErrCorruptRecord", ran, err)
	}
}

// TestDisabledKey: local-kms answers Decrypt under a disabled key with
// AccessDeniedException (it hides the reason, src/handler/decrypt.go), which is
// a *StoreError (a role without Decrypt looks the same, and a fixed policy
// makes a retry work); KMS's own DisabledException is a corrupt record. Either
// way the handler does not run.
func TestDisabledKey(t *testing.T) {
	c := localKMS(t)
	inner := newSpy()
	if _, _, err := run(t, wrap(t, inner, c, aliasDisable), "p", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(keyDisable)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.EnableKey(context.Background(), &kms.EnableKeyInput{KeyId: aws.String(keyDisable)}) })
	_, ran, err := run(t, wrap(t, inner, c, aliasDisable), "p", "rerun")
	var ae smithy.APIError
	if _, ok := errors.AsType[*idempotent.StoreError](err); ran || !ok || !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("local-kms, disabled key: ran=%v err=%v, want a *StoreError for AccessDeniedException", ran, err)
	}
	// A new record under a disabled key cannot be completed: a store error.
	_, _, err = run(t, wrap(t, inner, c, aliasDisable), "q", "v")
	if _, ok := errors.AsType[*idempotent.StoreError](err); !ok {
		t.Fatalf("complete under a disabled key: %v, want a *StoreError", err)
	}
	// KMS itself says DisabledException (local-kms cannot produce it here).
	fake := &counting{KMSAPI: c, decryptErr: &smithy.GenericAPIError{Code: "DisabledException", Message: "key is disabled"}}
	_, ran, err = run(t, wrap(t, inner, fake, aliasDisable), "p", "rerun")
	if ran || !errors.Is(err, idempotent.ErrCorruptRecord) {
		t.Fatalf("DisabledException: ran=%v err=%v, want ErrCorruptRecord", ran, err)
	}
}

func TestThrottlingIsStoreError(t *testing.T) {
	inner := newSpy()
	if _, _, err := run(t, wrap(t, inner, localKMS(t), aliasTest), "p", "v"); err != nil {
		t.Fatal(err)
	}
	// local-kms never throttles: a fake answer, as KMS sends it.
	c := &counting{KMSAPI: localKMS(t), decryptErr: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}}
	_, ran, err := run(t, wrap(t, inner, c, aliasTest), "p", "rerun")
	se, ok := errors.AsType[*idempotent.StoreError](err)
	if ran || !ok || errors.Is(err, idempotent.ErrCorruptRecord) {
		t.Fatalf("ran=%v err=%v, want a *StoreError and no run", ran, err)
	}
	if se.Op != "acquire" {
		t.Fatalf("Op %q, want acquire", se.Op)
	}
}

// TestRotation moves the alias to another key (local-kms has no on-demand
// rotation of key material): records sealed under the old key still open, new
// ones use the new key.
func TestRotation(t *testing.T) {
	c := localKMS(t)
	ctx := context.Background()
	move := func(target string) {
		t.Helper()
		if _, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(aliasRotate), TargetKeyId: aws.String(target)}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { move(keyFirst) })
	inner := newSpy()
	if _, _, err := run(t, wrap(t, inner, c, aliasRotate), "old", "before"); err != nil {
		t.Fatal(err)
	}
	move(keySecond)
	before := inner.ids()
	if _, _, err := run(t, wrap(t, inner, c, aliasRotate), "new", "after"); err != nil {
		t.Fatal(err)
	}
	newID := inner.idOf(t, before)
	for id, data := range inner.stored {
		blob := data[5 : 5+(int(data[3])<<8|int(data[4]))]
		out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob,
			EncryptionContext: map[string]string{idemkms.DefaultContextKey: idemkms.DefaultContextValue}})
		if err != nil {
			t.Fatal(err)
		}
		want := keyFirst
		if id == newID {
			want = keySecond
		}
		if got := aws.ToString(out.KeyId); !bytes.HasSuffix([]byte(got), []byte(want)) {
			t.Fatalf("record %s sealed under %s, want %s", id, got, want)
		}
	}
	cold := wrap(t, inner, c, aliasRotate)
	for key, want := range map[string]string{"old": "before", "new": "after"} {
		if v, ran, err := run(t, cold, key, "rerun"); err != nil || ran || v != want {
			t.Fatalf("%s after rotation: %q ran=%v %v", key, v, ran, err)
		}
	}
}

func TestWrapRejectsBadArguments(t *testing.T) {
	c := localKMS(t)
	m := idempotent.NewMemoryStore()
	tests := []struct {
		name  string
		store idempotent.Store
		c     idemkms.KMSAPI
		key   string
		opt   func(*idemkms.Options)
	}{
		{"nil store", nil, c, aliasTest, nil},
		{"nil client", m, nil, aliasTest, nil},
		{"no key", m, c, "", nil},
		{"empty context", m, c, aliasTest, func(o *idemkms.Options) { o.EncryptionContext = nil }},
		{"negative uses", m, c, aliasTest, func(o *idemkms.Options) { o.MaxUses = -1 }},
		{"nil clock", m, c, aliasTest, func(o *idemkms.Options) { o.Clock = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fns []func(*idemkms.Options)
			if tt.opt != nil {
				fns = append(fns, tt.opt)
			}
			if _, err := idemkms.Wrap(tt.store, tt.c, tt.key, fns...); err == nil {
				t.Fatal("no error")
			} else if _, ok := errors.AsType[*idempotent.ConfigError](err); !ok {
				t.Fatalf("%v, want a *ConfigError", err)
			}
		})
	}
}

// TestCorruptThroughWrap: the handler wrapper (idempotent.Wrap) does not run
// the handler for a record idemkms cannot open, and returns the typed error.
func TestCorruptThroughWrap(t *testing.T) {
	type in struct {
		ID string `json:"id"`
	}
	inner := newSpy()
	s := wrap(t, inner, localKMS(t), aliasTest)
	runs := 0
	h := idempotent.Wrap(idempotent.New(s), func(_ context.Context, e in) (string, error) { runs++; return "paid " + e.ID, nil },
		idempotent.WithKeyPath("id"))
	if v, err := h(context.Background(), in{ID: "p-9"}); err != nil || v != "paid p-9" {
		t.Fatalf("first: %q %v", v, err)
	}
	id, sealed := inner.only(t)
	b := bytes.Clone(sealed)
	b[len(b)/2] ^= 0x80
	inner.mu.Lock()
	inner.replace[id] = b
	inner.mu.Unlock()
	v, err := h(context.Background(), in{ID: "p-9"})
	if _, ok := errors.AsType[*idempotent.CorruptRecordError](err); !ok || runs != 1 || v != "" {
		t.Fatalf("tampered replay: %q err=%v runs=%d, want a *CorruptRecordError and no run", v, err, runs)
	}
}

// TestGenerateDataKeyFailure: a result that cannot be sealed is not stored;
// the call reports a *StoreError. The core keeps the lease after a failed
// complete (the handler's effects happened), so a retry within the lease does
// not run the handler again.
func TestGenerateDataKeyFailure(t *testing.T) {
	inner := newSpy()
	c := &counting{KMSAPI: localKMS(t), generateErr: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}}
	_, ran, err := run(t, wrap(t, inner, c, aliasTest), "p", "v1")
	if _, ok := errors.AsType[*idempotent.StoreError](err); !ok || !ran {
		t.Fatalf("ran=%v err=%v, want the handler run and a *StoreError", ran, err)
	}
	if len(inner.ids()) != 0 {
		t.Fatal("a result was stored unsealed")
	}
	_, ran, err = run(t, wrap(t, inner, localKMS(t), aliasTest), "p", "v2")
	if ran || !errors.Is(err, idempotent.ErrInProgress) {
		t.Fatalf("retry: ran=%v %v, want ErrInProgress and no run", ran, err)
	}
}

// replacedCompleted is a store whose successful Acquire reports a replaced
// completed record with Data it cannot open.
type replacedCompleted struct{ idempotent.Store }

func (r replacedCompleted) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	if _, ok, err := r.Store.Acquire(ctx, rec, now); !ok || err != nil {
		return nil, false, errors.New("the inner acquire did not land")
	}
	return &idempotent.Record{ID: rec.ID, Status: idempotent.StatusCompleted, Data: []byte("not sealed")}, true, nil
}

// TestAcquiredIsNotUndone: a successful acquire stays one, whatever record
// the store says it replaced.
func TestAcquiredIsNotUndone(t *testing.T) {
	s := wrap(t, replacedCompleted{idempotent.NewMemoryStore()}, localKMS(t), aliasTest)
	now := time.Now()
	got, ok, err := s.Acquire(context.Background(), idempotent.Record{ID: "k", Status: idempotent.StatusInProgress, Owner: "o",
		Expiration: now.Add(time.Hour), LeaseExpiration: now.Add(time.Minute)}, now)
	if err != nil || !ok || got == nil || got.Data != nil {
		t.Fatalf("Acquire: %+v %v %v, want acquired, the replaced record without Data", got, ok, err)
	}
}
