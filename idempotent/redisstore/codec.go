package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/zdata"
)

const (
	// recordFields is the length of the record array the scripts return.
	recordFields = 7
)

// encodeData returns the bytes to store for data and their format (zdata,
// the codec dynamostore uses too): data itself ("") below the threshold or
// when compression does not shrink it, else a zstd frame.
func (s *Store) encodeData(data []byte) ([]byte, string, error) {
	th := s.opts.CompressThreshold
	if th == 0 {
		th = DefaultCompressThreshold
	}
	return zdata.Encode(data, th)
}

// decodeRecord turns the record array a script returned into a Record.
// Required: a known status and the expiration; an in-progress record also
// needs its lease, a completed one its data. Anything missing, ill-typed or
// unknown yields an error wrapping idempotent.ErrCorruptRecord.
func decodeRecord(key string, reply any) (*idempotent.Record, error) {
	if t, ok := reply.(string); ok {
		return nil, corrupt(key, "", "the key holds a %s, not a hash", t)
	}
	arr, ok := reply.([]any)
	if !ok || len(arr) != recordFields {
		return nil, corrupt(key, "", "unexpected script reply %T", reply)
	}
	var f [recordFields]string
	var present [recordFields]bool
	for i, v := range arr {
		switch v := v.(type) {
		case nil:
		case bool: // RESP3 may carry Lua's false as a boolean
			if v {
				return nil, corrupt(key, "", "unexpected boolean in field %d", i)
			}
		case string:
			f[i], present[i] = v, true
		default:
			return nil, corrupt(key, "", "unexpected %T in field %d", v, i)
		}
	}
	const (
		iStatus = iota
		iExp
		iLease
		iOwner
		iValidation
		iData
		iFormat
	)
	rec := &idempotent.Record{ID: key, Owner: f[iOwner], Fingerprint: f[iValidation]}
	rec.Status = idempotent.Status(f[iStatus])
	switch {
	case !present[iStatus]:
		return nil, corrupt(key, fieldStatus, "missing")
	case rec.Status != idempotent.StatusInProgress && rec.Status != idempotent.StatusCompleted:
		return nil, corrupt(key, fieldStatus, "unknown status %q", f[iStatus])
	}
	if !present[iExp] {
		return nil, corrupt(key, fieldExpiration, "missing")
	}
	exp, err := strconv.ParseInt(f[iExp], 10, 64)
	if err != nil {
		return nil, corrupt(key, fieldExpiration, "want an integer, got %q", f[iExp])
	}
	rec.Expiration = time.Unix(exp, 0).UTC()
	switch {
	case present[iLease]:
		lease, err := strconv.ParseInt(f[iLease], 10, 64)
		if err != nil {
			return nil, corrupt(key, fieldLease, "want an integer, got %q", f[iLease])
		}
		rec.LeaseExpiration = time.UnixMilli(lease).UTC()
	case rec.Status == idempotent.StatusInProgress:
		return nil, corrupt(key, fieldLease, "missing on an %s record", rec.Status)
	}
	switch {
	case present[iData]:
		if rec.Data, err = decompress(key, []byte(f[iData]), f[iFormat]); err != nil {
			return nil, err
		}
	case present[iFormat]:
		return nil, corrupt(key, fieldFormat, "set without data")
	case rec.Status == idempotent.StatusCompleted:
		return nil, corrupt(key, fieldData, "missing on a %s record", rec.Status)
	}
	return rec, nil
}

// decompress is the inverse of encodeData for the bytes read back.
func decompress(key string, data []byte, format string) ([]byte, error) {
	out, err := zdata.Decode(data, format)
	switch {
	case errors.Is(err, zdata.ErrUnknownFormat):
		return nil, corrupt(key, fieldFormat, "unknown data format %q", format)
	case errors.Is(err, zdata.ErrUndecodable):
		return nil, corrupt(key, fieldData, "%v", err)
	}
	return out, err
}

// corrupt is the error for an undecodable record.
func corrupt(key, field, format string, args ...any) error {
	where := ""
	if field != "" {
		where = fmt.Sprintf(": field %q", field)
	}
	return fmt.Errorf("%w: record %s%s: %s", idempotent.ErrCorruptRecord, key, where, fmt.Sprintf(format, args...))
}
