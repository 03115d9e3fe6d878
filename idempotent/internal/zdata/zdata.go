// Package zdata is the one codec of stored results that the stores share
// (dynamostore and redisstore): results from a size threshold on are stored
// as a zstd frame when that shrinks them, and a stored frame may not claim to
// decompress to more than MaxDecoded.
//
// It is internal to the library; the Redis store's nested module may import
// it because its import path lies under idempotent/.
package zdata

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Zstd is the format name of a compressed result; "" is the plain bytes.
const Zstd = "zstd"

// MaxDecoded bounds what a stored frame may decompress to (a Lambda response
// is at most 6 MB; a record claiming more than this is taken as corrupt rather
// than allocated).
const MaxDecoded = 256 << 20

var (
	// ErrUnknownFormat: the stored format is neither "" nor Zstd.
	ErrUnknownFormat = errors.New("unknown data format")
	// ErrUndecodable: the stored frame does not decompress.
	ErrUndecodable = errors.New("compressed data does not decode")
)

var (
	encoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true))
	})
	decoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxDecoded), zstd.WithDecoderLowmem(true))
	})
)

// Encode returns the bytes to store for data and their format: data itself
// ("") when threshold is negative, data is shorter than threshold or
// compression does not shrink it; else a zstd frame (Zstd). A nil data is
// stored as empty bytes.
func Encode(data []byte, threshold int) ([]byte, string, error) {
	if data == nil {
		data = []byte{}
	}
	if threshold < 0 || len(data) < threshold {
		return data, "", nil
	}
	enc, err := encoder()
	if err != nil {
		return nil, "", fmt.Errorf("zstd encoder: %w", err)
	}
	z := enc.EncodeAll(data, make([]byte, 0, len(data)/3+64))
	if len(z) >= len(data) {
		return data, "", nil
	}
	return z, Zstd, nil
}

// Decode is the inverse of Encode. A format it does not know is
// ErrUnknownFormat, a frame that does not decompress (or claims more than
// MaxDecoded) ErrUndecodable; the stores report both as a corrupt record.
func Decode(data []byte, format string) ([]byte, error) {
	switch format {
	case "":
		return data, nil
	case Zstd:
		dec, err := decoder()
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		out, err := dec.DecodeAll(data, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
		}
		if out == nil {
			out = []byte{}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownFormat, format)
	}
}
