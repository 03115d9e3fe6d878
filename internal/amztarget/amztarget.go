// Package amztarget reads and writes the X-Amz-Target header of DynamoDB's
// JSON protocol ("DynamoDB_20120810.PutItem"), the one place where the local
// proxies and counters (testdynamo, dynamocost, the chaos fault proxy, the
// local runner's front) learn which operation a request is.
package amztarget

import (
	"net/http"
	"strings"
)

// Header is the header that names a DynamoDB request's operation.
const Header = "X-Amz-Target"

// prefix is DynamoDB's service and API version in Header.
const prefix = "DynamoDB_20120810."

// Op returns the DynamoDB operation h names ("PutItem", "GetItem", ...).
// ok is false when h has no X-Amz-Target header or its value is not a
// DynamoDB operation (another service's target, a bare prefix, a name that is
// not letters only).
func Op(h http.Header) (op string, ok bool) {
	op, ok = strings.CutPrefix(h.Get(Header), prefix)
	if !ok || op == "" {
		return "", false
	}
	for _, c := range op {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return "", false
		}
	}
	return op, true
}

// Set makes h name the DynamoDB operation op, as the SDK does.
func Set(h http.Header, op string) { h.Set(Header, prefix+op) }
