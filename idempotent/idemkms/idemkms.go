package idemkms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	lru "github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/zdata"
)

// KMSAPI is the part of the KMS client the store calls; *kms.Client
// implements it.
type KMSAPI interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Options configure a Store; Wrap sets the defaults, then applies optFns.
type Options struct {
	// EncryptionContext is sent with every GenerateDataKey and Decrypt call;
	// key policies and grants can require it. It must not be empty. Default:
	// {"purpose": "idemlambda-idempotency-record"}.
	EncryptionContext map[string]string
	// MaxAge bounds how long a data key is used to encrypt and how long a
	// decrypted data key is kept. Default 5 minutes; 0 turns caching off.
	MaxAge time.Duration
	// MaxUses bounds how many records one data key encrypts. Default 10,000;
	// 0 turns the encrypt-side cache off. At most 1<<32 (random GCM nonces).
	MaxUses int
	// CacheSize is how many decrypted data keys are kept. Default 64; 0 turns
	// the decrypt-side cache off.
	CacheSize int
	// Clock is read for the data-key ages. Default time.Now.
	Clock func() time.Time
	// CompressThreshold is the result size in bytes from which a result is
	// zstd-compressed before it is sealed, when that shrinks it (the stores'
	// codec; sealed bytes do not compress, so the store's own compression
	// finds nothing to gain). Default DefaultCompressThreshold; a negative
	// value turns compression off.
	CompressThreshold int
}

// DefaultCompressThreshold is the default Options.CompressThreshold, the
// stores' default: below it a zstd frame saves too little to pay.
const DefaultCompressThreshold = 512

// DefaultContextKey and DefaultContextValue are the default encryption
// context pair (the template's grant conditions on them).
const (
	DefaultContextKey   = "purpose"
	DefaultContextValue = "idemlambda-idempotency-record"
)

// Store encrypts Record.Data on Complete and decrypts the Data of completed
// records that Get and Acquire return. It is safe for concurrent use.
type Store struct {
	next  idempotent.Store
	kms   KMSAPI
	keyID string
	o     Options

	mu      sync.Mutex
	current *dataKey
	refresh chan struct{} // held (one slot) by the caller generating the next data key

	plain *lru.LRU[string, cipher.AEAD]
}

type dataKey struct {
	aead    cipher.AEAD
	blob    []byte
	created time.Time
	uses    int
}

// Wrap returns a Store that encrypts the stored results of next under the
// KMS key keyID (a key id, key ARN, alias name or alias ARN). It returns a
// *idempotent.ConfigError when an argument or option is invalid.
func Wrap(next idempotent.Store, client KMSAPI, keyID string, optFns ...func(*Options)) (*Store, error) {
	o := Options{
		EncryptionContext: map[string]string{DefaultContextKey: DefaultContextValue},
		MaxAge:            5 * time.Minute,
		MaxUses:           10_000,
		CacheSize:         64,
		Clock:             time.Now,
		CompressThreshold: DefaultCompressThreshold,
	}
	for _, fn := range optFns {
		fn(&o)
	}
	switch {
	case next == nil:
		return nil, &idempotent.ConfigError{Option: "idemkms.Wrap store", Err: errors.New("nil store")}
	case client == nil:
		return nil, &idempotent.ConfigError{Option: "idemkms.Wrap client", Err: errors.New("nil KMS client")}
	case keyID == "":
		return nil, &idempotent.ConfigError{Option: "idemkms.Wrap keyID", Err: errors.New("empty KMS key id")}
	case len(o.EncryptionContext) == 0:
		return nil, &idempotent.ConfigError{Option: "idemkms.Options.EncryptionContext", Err: errors.New("empty")}
	case o.MaxAge < 0 || o.MaxUses < 0 || o.CacheSize < 0:
		return nil, &idempotent.ConfigError{Option: "idemkms.Options", Err: errors.New("negative MaxAge, MaxUses or CacheSize")}
	case int64(o.MaxUses) > 1<<32:
		return nil, &idempotent.ConfigError{Option: "idemkms.Options.MaxUses", Err: errors.New("more than 1<<32 records per data key")}
	case o.Clock == nil:
		return nil, &idempotent.ConfigError{Option: "idemkms.Options.Clock", Err: errors.New("nil clock")}
	}
	ctx := make(map[string]string, len(o.EncryptionContext))
	for k, v := range o.EncryptionContext {
		ctx[k] = v
	}
	o.EncryptionContext = ctx
	s := &Store{next: next, kms: client, keyID: keyID, o: o, refresh: make(chan struct{}, 1)}
	if o.CacheSize > 0 && o.MaxAge > 0 {
		s.plain = lru.NewLRU[string, cipher.AEAD](o.CacheSize, nil, o.MaxAge)
	}
	return s, nil
}

// Acquire passes rec on (an in-progress record holds no result) and, when
// the key is held, decrypts the completed record that holds it. On success
// the replaced record is returned without its Data.
func (s *Store) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	existing, acquired, err := s.next.Acquire(ctx, rec, now)
	if err != nil || existing == nil {
		return existing, acquired, err
	}
	if acquired {
		// The record our write replaced: the core only reports the takeover,
		// and its Data may be left out. Opening it could only fail an
		// acquisition that landed (and strand the lease we now hold).
		out := *existing
		out.Data = nil
		return &out, true, nil
	}
	out, err := s.open(ctx, "acquire", existing)
	if err != nil {
		return nil, false, err
	}
	return out, acquired, nil
}

// Get returns the record for key with its result decrypted.
func (s *Store) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	rec, err := s.next.Get(ctx, key)
	if err != nil || rec == nil {
		return rec, err
	}
	return s.open(ctx, "get", rec)
}

// Complete encrypts rec.Data and passes the record on.
func (s *Store) Complete(ctx context.Context, rec idempotent.Record) error {
	sealed, err := s.seal(ctx, rec.ID, rec.Data)
	if err != nil {
		return err
	}
	rec.Data = sealed
	return s.next.Complete(ctx, rec)
}

// Release passes on: it writes no result.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	return s.next.Release(ctx, key, owner)
}

// Format: magic "IK" | format byte | uint16 length of the encrypted data key
// | encrypted data key | 12-byte nonce | AES-256-GCM ciphertext and tag. The
// format byte says what the ciphertext seals: formatPlain the result itself
// (every record before compression existed, and results below the threshold
// or that do not shrink), formatZstd a zstd frame of it (zdata, the stores'
// codec). It is part of the GCM additional data, so flipping it does not
// open.
const (
	magic0, magic1 = 'I', 'K'
	formatPlain    = 1
	formatZstd     = 2
	headerLen      = 5
)

func aad(version byte, id string) []byte {
	b := make([]byte, 0, 16+len(id))
	b = append(b, "idemkms/v"...)
	b = append(b, '0'+version, 0)
	return append(b, id...)
}

func (s *Store) seal(ctx context.Context, id string, data []byte) ([]byte, error) {
	dk, err := s.encryptKey(ctx, id)
	if err != nil {
		return nil, err
	}
	version := byte(formatPlain)
	if s.o.CompressThreshold >= 0 {
		z, f, err := zdata.Encode(data, s.o.CompressThreshold)
		if err != nil {
			return nil, &idempotent.StoreError{Op: "complete", RecordID: id, Err: fmt.Errorf("idemkms: %w", err)}
		}
		if f == zdata.Zstd {
			data, version = z, formatZstd
		}
	}
	if len(dk.blob) > 0xffff {
		return nil, &idempotent.StoreError{Op: "complete", RecordID: id, Err: fmt.Errorf("idemkms: encrypted data key of %d bytes", len(dk.blob))}
	}
	out := make([]byte, 0, headerLen+len(dk.blob)+12+len(data)+16)
	out = append(out, magic0, magic1, version)
	out = binary.BigEndian.AppendUint16(out, uint16(len(dk.blob)))
	out = append(out, dk.blob...)
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return nil, &idempotent.StoreError{Op: "complete", RecordID: id, Err: err}
	}
	out = append(out, nonce...)
	return dk.aead.Seal(out, nonce, data, aad(version, id)), nil
}

// encryptKey returns the cached data key, or a new one when it is too old or
// used up (or caching is off). One caller at a time generates the next data
// key; concurrent callers wait for it (or for their context) instead of each
// calling KMS.
func (s *Store) encryptKey(ctx context.Context, id string) (*dataKey, error) {
	caching := s.o.MaxAge > 0 && s.o.MaxUses > 0
	now := s.o.Clock()
	if caching {
		if dk := s.take(now); dk != nil {
			return dk, nil
		}
		select {
		case s.refresh <- struct{}{}:
		case <-ctx.Done():
			return nil, &idempotent.StoreError{Op: "complete", RecordID: id, Err: fmt.Errorf("idemkms: waiting for a data key: %w", ctx.Err())}
		}
		defer func() { <-s.refresh }()
		now = s.o.Clock()
		if dk := s.take(now); dk != nil { // generated while this call waited
			return dk, nil
		}
	}
	out, err := s.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(s.keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: s.o.EncryptionContext,
	})
	if err != nil {
		return nil, &idempotent.StoreError{Op: "complete", RecordID: id, Err: fmt.Errorf("idemkms: GenerateDataKey: %w", err)}
	}
	aead, err := newAEAD(out.Plaintext)
	if err != nil {
		return nil, &idempotent.StoreError{Op: "complete", RecordID: id, Err: fmt.Errorf("idemkms: GenerateDataKey: %w", err)}
	}
	dk := &dataKey{aead: aead, blob: out.CiphertextBlob, created: now, uses: 1}
	if caching {
		s.mu.Lock()
		s.current = dk
		s.mu.Unlock()
		if s.plain != nil {
			s.plain.Add(string(dk.blob), aead)
		}
	}
	return dk, nil
}

// take returns the current data key, counting one use, when it may still
// encrypt at now.
func (s *Store) take(now time.Time) *dataKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dk := s.current; dk != nil && dk.uses < s.o.MaxUses && now.Sub(dk.created) < s.o.MaxAge {
		dk.uses++
		return dk
	}
	return nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("data key of %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// open decrypts the Data of a completed record; other records pass as they
// are (an in-progress record holds no result).
func (s *Store) open(ctx context.Context, op string, rec *idempotent.Record) (*idempotent.Record, error) {
	if rec.Status != idempotent.StatusCompleted {
		return rec, nil
	}
	corrupt := func(err error) error { return &idempotent.CorruptRecordError{RecordID: rec.ID, Err: err} }
	d := rec.Data
	if len(d) < headerLen || d[0] != magic0 || d[1] != magic1 {
		return nil, corrupt(errors.New("idemkms: stored result is not encrypted"))
	}
	version := d[2]
	if version != formatPlain && version != formatZstd {
		return nil, corrupt(fmt.Errorf("idemkms: unknown format version %d", version))
	}
	n := int(binary.BigEndian.Uint16(d[3:5]))
	if len(d) < headerLen+n+12+16 || n == 0 {
		return nil, corrupt(errors.New("idemkms: stored result is truncated"))
	}
	blob := d[headerLen : headerLen+n]
	nonce := d[headerLen+n : headerLen+n+12]
	sealed := d[headerLen+n+12:]
	aead, err := s.decryptKey(ctx, op, rec.ID, blob)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, sealed, aad(version, rec.ID))
	if err != nil {
		return nil, corrupt(fmt.Errorf("idemkms: stored result does not authenticate under its record id: %w", err))
	}
	if version == formatZstd {
		// Authenticated: only a writer holding the data key made this frame.
		if plain, err = zdata.Decode(plain, zdata.Zstd); err != nil {
			return nil, corrupt(fmt.Errorf("idemkms: %w", err))
		}
	}
	out := *rec
	out.Data = plain
	return &out, nil
}

// decryptKey returns the cipher of the data key blob, from the cache or from
// KMS. (A GCM cipher is safe for concurrent use.)
func (s *Store) decryptKey(ctx context.Context, op, id string, blob []byte) (cipher.AEAD, error) {
	if s.plain != nil {
		if k, ok := s.plain.Get(string(blob)); ok {
			return k, nil
		}
	}
	out, err := s.kms.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    blob,
		EncryptionContext: s.o.EncryptionContext,
		// No KeyId: the blob names the key, so records written under an
		// alias's previous key still decrypt. The role's grant bounds which
		// keys that can be.
	})
	if err != nil {
		if undecryptable(err) {
			return nil, &idempotent.CorruptRecordError{RecordID: id, Err: fmt.Errorf("idemkms: Decrypt: %w", err)}
		}
		return nil, &idempotent.StoreError{Op: op, RecordID: id, Err: fmt.Errorf("idemkms: Decrypt: %w", err)}
	}
	aead, err := newAEAD(out.Plaintext)
	if err != nil {
		return nil, &idempotent.CorruptRecordError{RecordID: id, Err: fmt.Errorf("idemkms: Decrypt: %w", err)}
	}
	if s.plain != nil {
		s.plain.Add(string(blob), aead)
	}
	return aead, nil
}

// undecryptable reports whether KMS refused to decrypt this data key for a
// reason retrying does not fix: the record cannot be opened. Throttling,
// timeouts and internal errors are not (they are store failures).
func undecryptable(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "InvalidCiphertextException", "IncorrectKeyException", "DisabledException",
		"KMSInvalidStateException", "NotFoundException", "InvalidKeyUsageException":
		return true
	}
	return false
}
