package dynamostore

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
)

// encodeRecord is the item Acquire writes for rec: key, status, expiration
// (epoch s) and lease (epoch ms) always; owner, fingerprint and data when set.
func (s *Store) encodeRecord(rec idempotent.Record) (map[string]types.AttributeValue, error) {
	item := s.itemKey(rec.ID)
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
		st, err := s.encodeData(rec.Data)
		if err != nil {
			return nil, err
		}
		if st.chunked() {
			return nil, errTooLargeForAcquire
		}
		item[s.opts.DataAttr] = &types.AttributeValueMemberB{Value: st.data}
		if st.format != "" {
			item[s.opts.DataFormatAttr] = &types.AttributeValueMemberS{Value: st.format}
		}
	}
	return item, nil
}

// decodeRecord turns an item into a Record. Required: the id, a known status
// and the expiration; an in-progress record also needs its lease, a completed
// one its data (inline, or the manifest of its chunks). Any missing or
// ill-typed attribute yields an error wrapping idempotent.ErrCorruptRecord.
//
// The data of a chunked record is not read here: man is its manifest, and
// the caller reads the chunks (readChunks) when it needs the result.
func (s *Store) decodeRecord(item map[string]types.AttributeValue) (rec *idempotent.Record, man *chunkManifest, err error) {
	o := &s.opts
	key, err := str(item, "", o.idAttr(), true)
	if err != nil {
		return nil, nil, err
	}
	rec = &idempotent.Record{ID: key}

	st, err := str(item, key, o.StatusAttr, true)
	if err != nil {
		return nil, nil, err
	}
	rec.Status = idempotent.Status(st)
	if rec.Status != idempotent.StatusInProgress && rec.Status != idempotent.StatusCompleted {
		return nil, nil, corrupt(key, o.StatusAttr, "unknown status %q", st)
	}

	exp, ok, err := num(item, key, o.ExpirationAttr)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, corrupt(key, o.ExpirationAttr, "missing")
	}
	rec.Expiration = time.Unix(exp, 0).UTC()

	lease, ok, err := num(item, key, o.LeaseAttr)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case ok:
		rec.LeaseExpiration = time.UnixMilli(lease).UTC()
	case rec.Status == idempotent.StatusInProgress:
		return nil, nil, corrupt(key, o.LeaseAttr, "missing on an %s record", rec.Status)
	}

	if rec.Owner, err = str(item, key, o.OwnerAttr, false); err != nil {
		return nil, nil, err
	}
	if rec.Fingerprint, err = str(item, key, o.FingerprintAttr, false); err != nil {
		return nil, nil, err
	}

	data, man, ok, err := s.decodeData(key, item)
	if err != nil {
		return nil, nil, err
	}
	if !ok && rec.Status == idempotent.StatusCompleted {
		return nil, nil, corrupt(key, o.DataAttr, "missing on a %s record", rec.Status)
	}
	rec.Data = data
	return rec, man, nil
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
	return &idempotent.CorruptRecordError{RecordID: key, Err: fmt.Errorf("attribute %q: %s", attr, fmt.Sprintf(format, args...))}
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
