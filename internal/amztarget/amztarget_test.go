package amztarget_test

import (
	"net/http"
	"testing"

	"github.com/idemlambda/idemlambda/internal/amztarget"
)

func TestOp(t *testing.T) {
	tests := []struct {
		name   string
		header []string // values of X-Amz-Target; nil: no header
		op     string
		ok     bool
	}{
		{name: "PutItem", header: []string{"DynamoDB_20120810.PutItem"}, op: "PutItem", ok: true},
		{name: "TransactWriteItems", header: []string{"DynamoDB_20120810.TransactWriteItems"}, op: "TransactWriteItems", ok: true},
		{name: "no header", header: nil},
		{name: "empty", header: []string{""}},
		{name: "bare prefix", header: []string{"DynamoDB_20120810."}},
		{name: "no prefix", header: []string{"PutItem"}},
		{name: "other service", header: []string{"DynamoDBStreams_20120810.GetRecords"}},
		{name: "other version", header: []string{"DynamoDB_20111205.PutItem"}},
		{name: "not a name", header: []string{"DynamoDB_20120810.Put Item"}},
		{name: "dotted", header: []string{"DynamoDB_20120810.a.b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.header {
				h.Add("X-Amz-Target", v)
			}
			op, ok := amztarget.Op(h)
			if op != tt.op || ok != tt.ok {
				t.Fatalf("Op = %q, %v; want %q, %v", op, ok, tt.op, tt.ok)
			}
		})
	}
}

func TestSetRoundTrips(t *testing.T) {
	h := http.Header{}
	amztarget.Set(h, "DescribeTable")
	if got := h.Get("X-Amz-Target"); got != "DynamoDB_20120810.DescribeTable" {
		t.Fatalf("header %q", got)
	}
	if op, ok := amztarget.Op(h); op != "DescribeTable" || !ok {
		t.Fatalf("Op = %q, %v", op, ok)
	}
}
