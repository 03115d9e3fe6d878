package samtemplate

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/emf"
)

// lambdaLevels are Lambda's application log levels, most detailed first
// (LoggingConfig.ApplicationLogLevel: "TRACE is the highest level and FATAL
// is the lowest").
var lambdaLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// lambdaKeeps applies Lambda's application log-level filtering, as AWS
// documents it (Lambda developer guide, "Log-level filtering"), to one line
// written by a function whose runtime does not format its logs: the line
// must be a JSON object whose "level" member names a level, with a valid
// RFC 3339 "timestamp"; a missing or invalid level, or an invalid
// timestamp, makes the line INFO. The line is kept when its level is the
// threshold or less detailed.
func lambdaKeeps(line []byte, threshold string) bool {
	level := "INFO"
	var doc map[string]any
	if json.Unmarshal(line, &doc) == nil {
		lv, _ := doc["level"].(string)
		ts, _ := doc["timestamp"].(string)
		_, err := time.Parse(time.RFC3339Nano, ts)
		if slices.Contains(lambdaLevels, strings.ToUpper(lv)) && err == nil {
			level = strings.ToUpper(lv)
		}
	}
	return slices.Index(lambdaLevels, level) >= slices.Index(lambdaLevels, threshold)
}

// applicationLogLevels are the ApplicationLogLevel values fn can be deployed
// with: a literal, every AllowedValue of the parameter it refers to (every
// Lambda level when the parameter lists none), or INFO, Lambda's default
// for JSON logs. It returns nil when the function's logs are not filtered
// (plain-text logs).
func applicationLogLevels(t *testing.T, tpl *Template, fn Function) []string {
	t.Helper()
	if fn.LogFormat != "JSON" {
		return nil
	}
	switch v := asMap(fn.Properties["LoggingConfig"])["ApplicationLogLevel"].(type) {
	case nil:
		return []string{"INFO"}
	case string:
		return []string{v}
	case Intrinsic:
		name, ok := v.Arg.(string)
		p, found := tpl.Parameters[name]
		if v.Name != "Ref" || !ok || !found {
			t.Fatalf("%s: ApplicationLogLevel %v is not a !Ref of a parameter", fn.LogicalID, v)
		}
		if len(p.AllowedValues) == 0 {
			return lambdaLevels
		}
		return p.AllowedValues
	default:
		t.Fatalf("%s: ApplicationLogLevel %v (%T) is not a level", fn.LogicalID, v, v)
		return nil
	}
}

// TestEMFRecordsPassLogLevelFiltering checks that the metrics records emf
// writes (with the options handlers/orders uses: the defaults) are kept by
// Lambda's log-level filtering at every ApplicationLogLevel the template's
// functions can be deployed with, so an alarm on them (LeaseTakeovers) can
// fire at WARN and ERROR too.
func TestEMFRecordsPassLogLevelFiltering(t *testing.T) {
	var out bytes.Buffer
	m, err := emf.New(func(o *emf.Options) { o.Writer = &out })
	if err != nil {
		t.Fatal(err)
	}
	m.Observer().Call(context.Background(), idempotent.Report{Outcome: idempotent.OutcomeCompleted, Takeover: true})
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	record := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	var doc map[string]any
	if err := json.Unmarshal(record, &doc); err != nil || doc["LeaseTakeovers"] != 1.0 {
		t.Fatalf("no LeaseTakeovers record: %v %s", err, record)
	}

	// The filter model can fail: a record as emf wrote it before (no level)
	// is INFO, and dropped at WARN.
	if lambdaKeeps([]byte(`{"_aws":{"Timestamp":1},"Calls":1}`), "WARN") {
		t.Fatal("the filter model keeps a line without a level at WARN")
	}

	tpl := repoTemplate(t)
	filtered := 0
	for _, fn := range tpl.Functions() {
		levels := applicationLogLevels(t, tpl, fn)
		if levels != nil {
			filtered++
		}
		for _, lv := range levels {
			if !slices.Contains(lambdaLevels, lv) {
				t.Errorf("%s: ApplicationLogLevel %q is not one of Lambda's levels %v", fn.LogicalID, lv, lambdaLevels)
			}
			if !lambdaKeeps(record, lv) {
				t.Errorf("%s at ApplicationLogLevel %s drops the metrics record %s", fn.LogicalID, lv, record)
			}
		}
	}
	if filtered == 0 {
		t.Fatal("no function in template.yaml has JSON logs: the check checked nothing")
	}
	if p := tpl.Parameters["LogLevel"]; !slices.Contains(p.AllowedValues, "ERROR") {
		t.Fatalf("LogLevel AllowedValues %v: expected the template to offer ERROR", p.AllowedValues)
	}
}
