package dynamocost

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/internal/amztarget"
)

type canned struct{ status int }

func (c canned) RoundTrip(req *http.Request) (*http.Response, error) {
	body := `{}`
	if c.status != http.StatusOK {
		body = `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}`
	}
	return &http.Response{StatusCode: c.status, Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{}}, nil
}

func send(t *testing.T, m *Meter, op, attempt, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://x/", strings.NewReader(body))
	amztarget.Set(req.Header, op)
	req.Header.Set("Amz-Sdk-Request", "attempt="+attempt+"; max=3")
	if _, err := m.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
}

func TestMeter(t *testing.T) {
	m := &Meter{Next: canned{http.StatusOK}}
	m.SetKey("t", "id")
	big := strings.Repeat("x", 2000)
	send(t, m, "PutItem", "1", `{"TableName":"t","Item":{"id":{"S":"a"},"status":{"S":"INPROGRESS"}}}`)
	send(t, m, "UpdateItem", "1", `{"TableName":"t","Key":{"id":{"S":"a"}},"UpdateExpression":"SET #d = :d REMOVE status","ExpressionAttributeNames":{"#d":"data"},"ExpressionAttributeValues":{":d":{"S":"`+big+`"}}}`)
	send(t, m, "GetItem", "2", `{}`)
	st := m.Stats()
	if st.Calls["PutItem"] != 1 || st.Calls["UpdateItem"] != 1 || st.Calls["GetItem"] != 0 || st.Retries != 1 {
		t.Fatalf("calls %v, retries %d", st.Calls, st.Retries)
	}
	// 1 unit for the put; the item after the update is id(2+1) + data(4+2000) = 2007 bytes: 2 units.
	if st.WriteUnits != 3 || st.ItemBytes != 2007+len("id")+1+len("status")+len("INPROGRESS") {
		t.Fatalf("write units %d, item bytes %d", st.WriteUnits, st.ItemBytes)
	}
	// A failed condition costs the existing item.
	m.Next = canned{http.StatusBadRequest}
	m.Reset()
	send(t, m, "PutItem", "1", `{"TableName":"t","Item":{"id":{"S":"a"}}}`)
	if st := m.Stats(); st.WriteUnits != 2 {
		t.Fatalf("failed put: %d units, want 2", st.WriteUnits)
	}
}

func TestItemSize(t *testing.T) {
	var item map[string]json.RawMessage
	_ = json.Unmarshal([]byte(`{"s":{"S":"abc"},"n":{"N":"-12.50"},"b":{"B":"AAEC"},"t":{"BOOL":true},"m":{"M":{"k":{"S":"v"}}},"l":{"L":[{"S":"x"},{"NULL":true}]}}`), &item)
	// s 1+3, n 1+(3 digits "125" -> 2+1=3), b 1+3, t 1+1, m 1+(3+1+1+1), l 1+(3+2+1+1)
	want := 4 + 4 + 4 + 2 + 7 + 8
	if got := ItemSize(item); got != want {
		t.Fatalf("ItemSize = %d, want %d", got, want)
	}
}

func TestReadUnits(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		consistent bool
		want       float64
	}{
		{"absent item, eventually consistent", 0, false, 0.5},
		{"absent item, consistent", 0, true, 1},
		{"4 KB, eventually consistent", 4096, false, 0.5},
		{"4 KB and a byte, eventually consistent", 4097, false, 1},
		{"20 KB, consistent", 20 * 1024, true, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReadUnits(tt.size, tt.consistent); got != tt.want {
				t.Errorf("ReadUnits(%d, %v) = %v, want %v", tt.size, tt.consistent, got, tt.want)
			}
		})
	}
}
