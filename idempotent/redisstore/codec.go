package redisstore

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/idemlambda/idemlambda/idempotent"
)

const (
	formatZstd = "zstd"

	// maxDecoded bounds what a stored zstd frame may decompress to (a Lambda
	// response is at most 6 MB; a record claiming more than this is taken as
	// corrupt rather than allocated). The same bound as dynamostore's.
	maxDecoded = 256 << 20

	// recordFields is the length of the record array the scripts return.
	recordFields = 7
)

var (
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true))
	})
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecoded), zstd.WithDecoderLowmem(true))
	})
)

// encodeData returns the bytes to store for data and their format: data
// itself ("") below the threshold or when compression does not shrink it,
// else a zstd frame ("zstd").
func (s *Store) encodeData(data []byte) ([]byte, string, error) {
	if data == nil {
		data = []byte{}
	}
	th := s.opts.CompressThreshold
	if th == 0 {
		th = DefaultCompressThreshold
	}
	if th < 0 || len(data) < th {
		return data, "", nil
	}
	enc, err := zstdEncoder()
	if err != nil {
		return nil, "", fmt.Errorf("zstd encoder: %w", err)
	}
	z := enc.EncodeAll(data, make([]byte, 0, len(data)/3+64))
	if len(z) >= len(data) {
		return data, "", nil
	}
	return z, formatZstd, nil
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
	rec := &idempotent.Record{Key: key, Owner: f[iOwner], Fingerprint: f[iValidation]}
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
	switch format {
	case "":
		return data, nil
	case formatZstd:
		dec, err := zstdDecoder()
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		out, err := dec.DecodeAll(data, nil)
		if err != nil {
			return nil, corrupt(key, fieldData, "compressed data does not decode: %v", err)
		}
		if out == nil {
			out = []byte{}
		}
		return out, nil
	default:
		return nil, corrupt(key, fieldFormat, "unknown data format %q", format)
	}
}

// corrupt is the error for an undecodable record.
func corrupt(key, field, format string, args ...any) error {
	where := ""
	if field != "" {
		where = fmt.Sprintf(": field %q", field)
	}
	return fmt.Errorf("%w: record %s%s: %s", idempotent.ErrCorruptRecord, key, where, fmt.Sprintf(format, args...))
}
