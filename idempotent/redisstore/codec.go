package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/zdata"
)

const (
	// recordFields is the length of a legacy record array.
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

// The record's attribute names, as the legacy hash layout names its fields
// (the contract's names, §2); error messages name them for both layouts.
const (
	fieldStatus     = "status"
	fieldExpiration = "expiration"             // epoch seconds
	fieldLease      = "in_progress_expiration" // epoch milliseconds
	fieldOwner      = "owner"
	fieldValidation = "validation"
	fieldData       = "data"
	fieldFormat     = "data_format" // absent: plain bytes; "zstd": a zstd frame
)

// Layout 1 stores a record as one string:
//
//	"1" status " " expiration " " lease " " owner " " validation " " format "\n" data
//
// status is I (in progress) or C (completed); expiration is epoch seconds,
// lease epoch milliseconds (empty on a completed record); owner and
// validation are escaped (escape); format is "" (plain bytes), "zstd", or
// "-" (no data, an in-progress record). Everything after the first newline
// is the data. The leading "1" is the layout's version.
const (
	layout1     = '1'
	statusIn    = 'I'
	statusDone  = 'C'
	formatNone  = "-"
	headerSlack = 64 // bytes beyond the variable fields a header takes
)

// encodeRecord returns rec's layout-1 bytes, with data stored as given in
// format ("" plain, "zstd"); hasData false stores no data.
func encodeRecord(rec idempotent.Record, hasData bool, data []byte, format string) []byte {
	owner, fp := escape(rec.Owner), escape(rec.Fingerprint)
	b := make([]byte, 0, headerSlack+len(owner)+len(fp)+len(format)+len(data))
	b = append(b, layout1)
	if rec.Status == idempotent.StatusCompleted {
		b = append(b, statusDone)
	} else {
		b = append(b, statusIn)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, rec.Expiration.Unix(), 10)
	b = append(b, ' ')
	if rec.Status != idempotent.StatusCompleted {
		b = strconv.AppendInt(b, rec.LeaseExpiration.UnixMilli(), 10)
	}
	b = append(b, ' ')
	b = append(b, owner...)
	b = append(b, ' ')
	b = append(b, fp...)
	b = append(b, ' ')
	if hasData {
		b = append(b, escape(format)...)
	} else {
		b = append(b, formatNone...)
	}
	b = append(b, '\n')
	b = append(b, data...)
	return b
}

// escape writes s so that it holds no space, newline or other byte outside
// '!'..'~' (and no '%'), as %XX: a header field, compared as it is by the
// scripts. Owner tokens (base64url) and fingerprints (hex) need no escaping,
// and s itself is returned then.
func escape(s string) string {
	i := 0
	for i < len(s) && plain(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	const hexdig = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+8)
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if c := s[i]; plain(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexdig[c>>4], hexdig[c&15])
		}
	}
	return string(b)
}

func plain(c byte) bool { return c > ' ' && c <= '~' && c != '%' }

// unescape is the inverse of escape; ok is false for a malformed escape.
func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b = append(b, byte(n))
		i += 2
	}
	return string(b), true
}

// decodeReply turns a record a script returned into a Record: a layout-1
// string, a legacy hash array, or {0, type} for a foreign key. Anything
// missing, ill-typed or unknown yields an error wrapping
// idempotent.ErrCorruptRecord.
func decodeReply(key string, reply any) (*idempotent.Record, error) {
	switch r := reply.(type) {
	case string:
		return decodeString(key, r)
	case []any:
		if len(r) == 2 {
			if t, ok := r[1].(string); ok {
				return nil, corrupt(key, "", "the key holds a %s, not a record", t)
			}
		}
		return decodeLegacy(key, r)
	}
	return nil, corrupt(key, "", "unexpected script reply %T", reply)
}

// decodeString decodes a layout-1 record; see encodeRecord.
func decodeString(key, v string) (*idempotent.Record, error) {
	nl := strings.IndexByte(v, '\n')
	if len(v) < 2 || v[0] != layout1 || nl < 0 {
		return nil, corrupt(key, "", "the key holds a string that is not a record")
	}
	f := strings.Split(v[:nl], " ")
	if len(f) != 6 {
		return nil, corrupt(key, "", "a record header of %d fields, want 6", len(f))
	}
	rec := &idempotent.Record{ID: key}
	switch f[0][1:] {
	case string(statusIn):
		rec.Status = idempotent.StatusInProgress
	case string(statusDone):
		rec.Status = idempotent.StatusCompleted
	default:
		return nil, corrupt(key, fieldStatus, "unknown status %q", f[0][1:])
	}
	exp, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return nil, corrupt(key, fieldExpiration, "want an integer, got %q", f[1])
	}
	rec.Expiration = time.Unix(exp, 0).UTC()
	switch {
	case f[2] != "":
		lease, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, corrupt(key, fieldLease, "want an integer, got %q", f[2])
		}
		rec.LeaseExpiration = time.UnixMilli(lease).UTC()
	case rec.Status == idempotent.StatusInProgress:
		return nil, corrupt(key, fieldLease, "missing on an %s record", rec.Status)
	}
	var ok1, ok2, ok3 bool
	var format string
	rec.Owner, ok1 = unescape(f[3])
	rec.Fingerprint, ok2 = unescape(f[4])
	format, ok3 = unescape(f[5])
	if !ok1 || !ok2 || !ok3 {
		return nil, corrupt(key, "", "a malformed escape in the header %q", v[:nl])
	}
	data := v[nl+1:]
	switch {
	case format != formatNone:
		if rec.Data, err = decompress(key, []byte(data), format); err != nil {
			return nil, err
		}
	case data != "":
		return nil, corrupt(key, fieldData, "data after a header without any")
	case rec.Status == idempotent.StatusCompleted:
		return nil, corrupt(key, fieldData, "missing on a %s record", rec.Status)
	}
	return rec, nil
}

// decodeLegacy decodes the record array of the hash layout a script
// returned: {status, expiration, in_progress_expiration, owner, validation,
// data, data_format}. Required: a known status and the expiration; an
// in-progress record also needs its lease, a completed one its data.
func decodeLegacy(key string, arr []any) (*idempotent.Record, error) {
	if len(arr) != recordFields {
		return nil, corrupt(key, "", "unexpected script reply of %d values", len(arr))
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
