package dynamostore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
)

// encodeRecord is the item Acquire writes for rec: key, status, expiration
// (epoch s) and lease (epoch ms) always; owner, fingerprint and data when set.
func (s *Store) encodeRecord(ctx context.Context, rec idempotent.Record) (map[string]types.AttributeValue, error) {
	item := s.itemKey(rec.Key)
	item[s.opts.StatusAttr] = &types.AttributeValueMemberS{Value: string(rec.Status)}
	item[s.opts.ExpirationAttr] = epoch(rec.Expiration.Unix())
	item[s.opts.LeaseAttr] = epoch(rec.LeaseExpiration.UnixMilli())
	if rec.Owner != "" {
		item[s.opts.OwnerAttr] = &types.AttributeValueMemberS{Value: rec.Owner}
	}
	if rec.Fingerprint != "" {
		item[s.opts.FingerprintAttr] = &types.AttributeValueMemberS{Value: rec.Fingerprint}
	}
	if rec.Data != nil {
		data, err := s.encodeData(ctx, rec.Key, rec.Data)
		if err != nil {
			return nil, err
		}
		item[s.opts.DataAttr] = data
	}
	return item, nil
}

// encodeData turns a result into the value of the data attribute. It is the
// one place results are written, the seam for compressing large results and
// splitting those larger than an item into chunk items (contract §6).
func (s *Store) encodeData(_ context.Context, _ string, data []byte) (types.AttributeValue, error) {
	if data == nil {
		data = []byte{}
	}
	return &types.AttributeValueMemberB{Value: data}, nil
}

// decodeData reads the result back from the data attribute; the counterpart
// of encodeData.
func (s *Store) decodeData(_ context.Context, key string, av types.AttributeValue) ([]byte, error) {
	b, ok := av.(*types.AttributeValueMemberB)
	if !ok {
		return nil, corrupt(key, s.opts.DataAttr, "want type B, got %s", avType(av))
	}
	return b.Value, nil
}

// decodeRecord turns an item into a Record. Required: the id, a known status
// and the expiration; an in-progress record also needs its lease, a completed
// one its data. Any missing or ill-typed attribute yields an error wrapping
// idempotent.ErrCorruptRecord.
func (s *Store) decodeRecord(ctx context.Context, item map[string]types.AttributeValue) (*idempotent.Record, error) {
	o := &s.opts
	key, err := str(item, "", o.idAttr(), true)
	if err != nil {
		return nil, err
	}
	rec := &idempotent.Record{Key: key}

	st, err := str(item, key, o.StatusAttr, true)
	if err != nil {
		return nil, err
	}
	rec.Status = idempotent.Status(st)
	if rec.Status != idempotent.StatusInProgress && rec.Status != idempotent.StatusCompleted {
		return nil, corrupt(key, o.StatusAttr, "unknown status %q", st)
	}

	exp, ok, err := num(item, key, o.ExpirationAttr)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, corrupt(key, o.ExpirationAttr, "missing")
	}
	rec.Expiration = time.Unix(exp, 0).UTC()

	lease, ok, err := num(item, key, o.LeaseAttr)
	if err != nil {
		return nil, err
	}
	switch {
	case ok:
		rec.LeaseExpiration = time.UnixMilli(lease).UTC()
	case rec.Status == idempotent.StatusInProgress:
		return nil, corrupt(key, o.LeaseAttr, "missing on an %s record", rec.Status)
	}

	if rec.Owner, err = str(item, key, o.OwnerAttr, false); err != nil {
		return nil, err
	}
	if rec.Fingerprint, err = str(item, key, o.FingerprintAttr, false); err != nil {
		return nil, err
	}

	if av, ok := item[o.DataAttr]; ok {
		if rec.Data, err = s.decodeData(ctx, key, av); err != nil {
			return nil, err
		}
	} else if rec.Status == idempotent.StatusCompleted {
		return nil, corrupt(key, o.DataAttr, "missing on a %s record", rec.Status)
	}
	return rec, nil
}

// str reads a string attribute; a missing one is "" unless required.
func str(item map[string]types.AttributeValue, key, attr string, required bool) (string, error) {
	av, ok := item[attr]
	if !ok {
		if required {
			return "", corrupt(key, attr, "missing")
		}
		return "", nil
	}
	v, ok := av.(*types.AttributeValueMemberS)
	if !ok {
		return "", corrupt(key, attr, "want type S, got %s", avType(av))
	}
	if required && v.Value == "" {
		return "", corrupt(key, attr, "empty")
	}
	return v.Value, nil
}

// num reads an integer number attribute; ok is false when it is missing.
func num(item map[string]types.AttributeValue, key, attr string) (n int64, ok bool, err error) {
	av, ok := item[attr]
	if !ok {
		return 0, false, nil
	}
	v, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return 0, false, corrupt(key, attr, "want type N, got %s", avType(av))
	}
	n, err = strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, false, corrupt(key, attr, "want an integer, got %q", v.Value)
	}
	return n, true, nil
}

// corrupt is the error for an undecodable item.
func corrupt(key, attr, format string, args ...any) error {
	if key == "" {
		key = "(unknown)"
	}
	return fmt.Errorf("%w: record %s: attribute %q: %s", idempotent.ErrCorruptRecord, key, attr, fmt.Sprintf(format, args...))
}

// avType names the DynamoDB type of an attribute value for error messages.
func avType(av types.AttributeValue) string {
	switch av.(type) {
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberM:
		return "M"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberSS:
		return "SS"
	case *types.AttributeValueMemberNS:
		return "NS"
	case *types.AttributeValueMemberBS:
		return "BS"
	default:
		return fmt.Sprintf("%T", av)
	}
}
