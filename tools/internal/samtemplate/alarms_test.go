package samtemplate

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/emf"
)

// emfMetrics returns the namespace and dimension names the emf package
// writes, read from a real EMF line of a guarded call, and the names of its
// metrics (emf.MetricNames, checked against the line).
func emfMetrics(t *testing.T) (string, []string, []string) {
	t.Helper()
	t.Setenv(idempotent.FunctionNameEnv, "fn")
	var out bytes.Buffer
	m, err := emf.New(func(o *emf.Options) { o.Writer = &out })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idempotent.Do(context.Background(), idempotent.New(idempotent.NewMemoryStore(), m.Option()), "s", "k",
		func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(bytes.Split(out.Bytes(), []byte("\n"))[0]), &line); err != nil || len(line.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("EMF line %q: %v", out.String(), err)
	}
	d := line.AWS.CloudWatchMetrics[0]
	names := emf.MetricNames()
	for _, n := range d.Metrics {
		if !slices.Contains(names, n.Name) {
			t.Fatalf("emf wrote %q, not in emf.MetricNames %v", n.Name, names)
		}
	}
	return d.Namespace, d.Dimensions[0], names
}

// TestTemplateAlarms checks the idempotency alarms: each function has the
// four, on the namespace, dimension and metric names the functions' EMF
// lines carry, notifying the optional topic.
func TestTemplateAlarms(t *testing.T) {
	ns, dims, names := emfMetrics(t)
	if !slices.Equal(dims, []string{"FunctionName"}) {
		t.Fatalf("emf dimensions %v; the alarms assume [FunctionName]", dims)
	}
	tpl := repoTemplate(t)
	want := []string{"CorruptRecords", "LeaseLost", "LeaseTakeovers", "StoreErrors"}
	per := map[string][]string{}
	for _, r := range tpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		p := r.Properties
		metric, _ := p["MetricName"].(string)
		if p["Namespace"] != ns || !slices.Contains(names, metric) {
			t.Errorf("%s: namespace %v, metric %v; emf writes %q with %v", r.LogicalID, p["Namespace"], metric, ns, names)
		}
		ds, _ := p["Dimensions"].([]any)
		if len(ds) != 1 {
			t.Fatalf("%s: dimensions %v", r.LogicalID, ds)
		}
		d := ds[0].(map[string]any)
		ref, ok := d["Value"].(Intrinsic)
		if d["Name"] != "FunctionName" || !ok || ref.Name != "Ref" {
			t.Fatalf("%s: dimension %v, want FunctionName = !Ref <function>", r.LogicalID, d)
		}
		fn, _ := ref.Arg.(string)
		if _, found := tpl.Resources[fn]; !found {
			t.Errorf("%s: dimension refers to %q, not a resource", r.LogicalID, fn)
		}
		if _, ok := p["AlarmActions"].(Intrinsic); !ok {
			t.Errorf("%s: AlarmActions %v, want !If on the topic parameter", r.LogicalID, p["AlarmActions"])
		}
		per[fn] = append(per[fn], metric)
	}
	for _, fn := range tpl.Functions() {
		got := per[fn.LogicalID]
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s alarms on %v, want %v", fn.LogicalID, got, want)
		}
	}

	dash := tpl.ResourcesOfType("AWS::CloudWatch::Dashboard")
	if len(dash) != 1 {
		t.Fatalf("%d dashboards, want 1", len(dash))
	}
	body, _ := dash[0].Properties["DashboardBody"].(Intrinsic)
	src, _ := body.Arg.(string)
	shown := map[string]bool{}
	for _, m := range regexp.MustCompile(`\["`+regexp.QuoteMeta(ns)+`","(\w+)","FunctionName"`).FindAllStringSubmatch(src, -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("dashboard shows %q, which emf does not write", m[1])
		}
		shown[m[1]] = true
	}
	for _, m := range []string{"Calls", "Replayed", "InProgress", "PayloadMismatch", "LeaseTakeovers", "StoreTime"} {
		if !shown[m] {
			t.Errorf("dashboard does not show %s", m)
		}
	}
	var v any
	if err := json.Unmarshal([]byte(regexp.MustCompile(`\$\{[^}]+\}`).ReplaceAllString(src, "x")), &v); err != nil {
		t.Errorf("dashboard body is not JSON: %v", err)
	}
}
