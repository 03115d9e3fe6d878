package idemstore

import (
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		cluster string
		table   string
		want    string // "redis", "dynamo" or "" for an error
		wantErr bool
	}{
		{name: "table only", table: "idem", want: "dynamo"},
		{name: "redis URL wins", url: "redis://127.0.0.1:6379/0", table: "idem", want: "redis"},
		{name: "TLS URL", url: "rediss://user:secret@example.internal:6379", want: "redis"},
		{name: "cluster", url: "rediss://clustercfg.example.internal:6379", cluster: "true", want: "redis"},
		{name: "cluster off", url: "redis://127.0.0.1:6379", cluster: "false", want: "redis"},
		{name: "bad cluster flag", url: "redis://127.0.0.1:6379", cluster: "yes please", wantErr: true},
		{name: "bad URL", url: "http://x", table: "idem", wantErr: true},
		{name: "bad cluster URL", url: "http://x", cluster: "true", wantErr: true},
		{name: "nothing", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{EnvRedisURL: tt.url, EnvRedisCluster: tt.cluster}
			s, err := New(func(k string) string { return env[k] }, nil, tt.table)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New = %T, want an error", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch s.(type) {
			case *redisstore.Store:
				if tt.want != "redis" {
					t.Fatalf("got a Redis store, want %s", tt.want)
				}
			case *dynamostore.Store:
				if tt.want != "dynamo" {
					t.Fatalf("got a DynamoDB store, want %s", tt.want)
				}
			default:
				t.Fatalf("got %T", s)
			}
		})
	}
}

// The error for a bad URL must not echo it: it may hold a password.
func TestNewHidesURL(t *testing.T) {
	for _, cluster := range []string{"", "true"} {
		env := map[string]string{EnvRedisURL: "redis://u:hunter2@[bad", EnvRedisCluster: cluster}
		_, err := New(func(k string) string { return env[k] }, nil, "")
		if err == nil {
			t.Fatal("want an error")
		}
		if got := err.Error(); strings.Contains(got, "hunter2") {
			t.Fatalf("error %q leaks the password", got)
		}
	}
}
