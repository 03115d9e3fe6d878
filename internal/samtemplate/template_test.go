package samtemplate

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// These tests check the deployable invariants of the repository's own
// template.yaml and samconfig.toml.

const repoRoot = "../.."

func repoTemplate(t *testing.T) *Template {
	t.Helper()
	tpl, err := ParseFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// ownTable is the table a function's <NAME>_TABLE variable (other than
// IDEMPOTENCY_TABLE) refers to.
func ownTable(t *testing.T, fn Function) string {
	t.Helper()
	for k, v := range fn.Environment {
		if k == "IDEMPOTENCY_TABLE" || !strings.HasSuffix(k, "_TABLE") {
			continue
		}
		if ref, ok := v.(Intrinsic); ok && ref.Name == "Ref" {
			return ref.Arg.(string)
		}
	}
	t.Fatalf("%s has no <NAME>_TABLE variable referring to its table", fn.LogicalID)
	return ""
}

func idempotencyTable(t *testing.T, fn Function) string {
	t.Helper()
	ref, ok := fn.Environment["IDEMPOTENCY_TABLE"].(Intrinsic)
	if !ok || ref.Name != "Ref" {
		t.Fatalf("%s: IDEMPOTENCY_TABLE = %#v, want !Ref of the idempotency table", fn.LogicalID, fn.Environment["IDEMPOTENCY_TABLE"])
	}
	return ref.Arg.(string)
}

func TestTemplateFunctions(t *testing.T) {
	tpl := repoTemplate(t)
	fns := tpl.Functions()
	var ids []string
	for _, fn := range fns {
		ids = append(ids, fn.LogicalID)
	}
	if want := []string{"OrdersFunction", "PaymentsFunction"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("functions = %v, want %v", ids, want)
	}
	for _, fn := range fns {
		t.Run(fn.LogicalID, func(t *testing.T) {
			if fn.Runtime != "provided.al2023" {
				t.Errorf("Runtime = %q, want provided.al2023", fn.Runtime)
			}
			if !reflect.DeepEqual(fn.Architectures, []string{"arm64"}) {
				t.Errorf("Architectures = %v, want [arm64]", fn.Architectures)
			}
			if fn.BuildMethod != "makefile" || fn.Handler != "bootstrap" || fn.CodeURI != "." {
				t.Errorf("BuildMethod %q, Handler %q, CodeUri %q; want makefile, bootstrap, .", fn.BuildMethod, fn.Handler, fn.CodeURI)
			}
			for _, k := range []string{"IDEMPOTENCY_TABLE", "IDEMPOTENCY_TTL", "LOG_LEVEL"} {
				if _, ok := fn.Environment[k]; !ok {
					t.Errorf("environment lacks %s", k)
				}
			}
			if got := fn.Environment["IDEMPOTENCY_TTL"]; !reflect.DeepEqual(got, Intrinsic{Name: "Ref", Arg: "IdempotencyTTL"}) {
				t.Errorf("IDEMPOTENCY_TTL = %#v, want !Ref IdempotencyTTL", got)
			}
			if got := fn.Environment["LOG_LEVEL"]; !reflect.DeepEqual(got, Intrinsic{Name: "Ref", Arg: "LogLevel"}) {
				t.Errorf("LOG_LEVEL = %#v, want !Ref LogLevel", got)
			}
		})
	}
	if p := tpl.Parameters["IdempotencyTTL"]; p.Default != "3600" || p.Type != "Number" {
		t.Errorf("IdempotencyTTL = %+v, want a Number defaulting to 3600", p)
	}
	if p := tpl.Parameters["LogLevel"]; !p.HasDefault {
		t.Errorf("LogLevel = %+v, want a default", p)
	}
	for _, out := range []string{"ApiUrl", "OrdersQueueUrl"} {
		if _, ok := tpl.Outputs[out]; !ok {
			t.Errorf("output %s missing", out)
		}
	}
}

func TestTemplateTables(t *testing.T) {
	tpl := repoTemplate(t)
	tables := map[string]Table{}
	for _, tbl := range tpl.Tables() {
		tables[tbl.LogicalID] = tbl
	}
	wantKey := []Key{{Name: "id", KeyType: "HASH", AttributeType: "S"}}
	for _, fn := range tpl.Functions() {
		idem := tables[idempotencyTable(t, fn)]
		own := tables[ownTable(t, fn)]
		for _, tbl := range []Table{idem, own} {
			if !reflect.DeepEqual(tbl.Keys, wantKey) {
				t.Errorf("%s: key schema %+v, want %+v", tbl.LogicalID, tbl.Keys, wantKey)
			}
			if tbl.BillingMode != "PAY_PER_REQUEST" {
				t.Errorf("%s: BillingMode %q", tbl.LogicalID, tbl.BillingMode)
			}
		}
		// "expiration" is the default TTL attribute name of the DynamoDB store:
		// see the default attribute names in idempotent/dynamostore.
		if !idem.TTLEnabled || idem.TTLAttribute != "expiration" {
			t.Errorf("%s: TTL enabled=%v attribute=%q, want enabled on expiration", idem.LogicalID, idem.TTLEnabled, idem.TTLAttribute)
		}
		if !idem.PITR || !idem.SSE {
			t.Errorf("%s: PITR=%v SSE=%v, want both enabled", idem.LogicalID, idem.PITR, idem.SSE)
		}
	}
}

func TestTemplateEvents(t *testing.T) {
	tpl := repoTemplate(t)
	payments, _ := tpl.Function("PaymentsFunction")
	var routes []string
	for _, e := range payments.Events {
		if e.Type != "HttpApi" {
			t.Errorf("PaymentsFunction event %s has type %s", e.Name, e.Type)
			continue
		}
		routes = append(routes, e.Method+" "+e.Path)
		if api, ok := e.Properties["ApiId"].(Intrinsic); !ok || tpl.Resources[api.Arg.(string)].Type != TypeHTTPAPI {
			t.Errorf("event %s: ApiId %#v is not a !Ref of an %s", e.Name, e.Properties["ApiId"], TypeHTTPAPI)
		}
	}
	sort.Strings(routes)
	if want := []string{"GET /payments/{id}", "POST /payments"}; !reflect.DeepEqual(routes, want) {
		t.Errorf("routes = %v, want %v", routes, want)
	}

	orders, _ := tpl.Function("OrdersFunction")
	if len(orders.Events) != 1 || orders.Events[0].Type != "SQS" {
		t.Fatalf("OrdersFunction events = %+v, want one SQS event", orders.Events)
	}
	ev := orders.Events[0]
	if !reflect.DeepEqual(ev.FunctionResponseTypes, []string{"ReportBatchItemFailures"}) {
		t.Errorf("FunctionResponseTypes = %v, want [ReportBatchItemFailures]", ev.FunctionResponseTypes)
	}
	if ev.BatchSize != 10 {
		t.Errorf("BatchSize = %d, want 10", ev.BatchSize)
	}
	att, ok := ev.Queue.(Intrinsic)
	if !ok || att.Name != "Fn::GetAtt" {
		t.Fatalf("Queue = %#v, want !GetAtt <queue>.Arn", ev.Queue)
	}
	queue := tpl.Resources[att.Arg.([]any)[0].(string)]
	if queue.Type != TypeQueue {
		t.Fatalf("event queue %s is a %s", queue.LogicalID, queue.Type)
	}
	if vt := asInt(queue.Properties["VisibilityTimeout"]); vt < 6*orders.Timeout {
		t.Errorf("%s VisibilityTimeout %d < 6 x function timeout %d", queue.LogicalID, vt, orders.Timeout)
	}
	redrive := asMap(queue.Properties["RedrivePolicy"])
	if asInt(redrive["maxReceiveCount"]) != 5 {
		t.Errorf("maxReceiveCount = %v, want 5", redrive["maxReceiveCount"])
	}
	dlq, ok := redrive["deadLetterTargetArn"].(Intrinsic)
	if !ok || tpl.Resources[asStrings(dlq.Arg)[0]].Type != TypeQueue {
		t.Errorf("deadLetterTargetArn = %#v, want !GetAtt of a queue", redrive["deadLetterTargetArn"])
	}
}

// walkStatements calls fn for every map in the template that looks like an IAM
// statement, wherever it is (function Policies, roles, queue policies).
func walkStatements(v any, fn func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["Effect"]; ok {
			fn(v)
		}
		for _, e := range v {
			walkStatements(e, fn)
		}
	case []any:
		for _, e := range v {
			walkStatements(e, fn)
		}
	case Intrinsic:
		walkStatements(v.Arg, fn)
	}
}

func TestTemplateIAMHasNoWildcards(t *testing.T) {
	tpl := repoTemplate(t)
	n := 0
	for id, r := range tpl.Resources {
		walkStatements(r.Properties, func(s map[string]any) {
			n++
			if _, ok := s["NotAction"]; ok {
				t.Errorf("%s: NotAction grants everything else", id)
			}
			if _, ok := s["NotResource"]; ok {
				t.Errorf("%s: NotResource grants everything else", id)
			}
			for _, key := range []string{"Action", "Resource"} {
				var check func(any)
				check = func(v any) {
					switch v := v.(type) {
					case string:
						if strings.Contains(v, "*") {
							t.Errorf("%s: %s %q has a wildcard", id, key, v)
						}
					case []any:
						for _, e := range v {
							check(e)
						}
					case Intrinsic:
						check(v.Arg)
					}
				}
				check(s[key])
			}
		})
	}
	if n == 0 {
		t.Fatal("no IAM statements found")
	}
}

func TestTemplateDynamoDBActions(t *testing.T) {
	tpl := repoTemplate(t)
	idemActions := []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
	want := map[string]map[string][]string{
		"PaymentsFunction": {"IdempotencyTable": idemActions, "PaymentsTable": {"dynamodb:GetItem", "dynamodb:PutItem"}},
		"OrdersFunction":   {"IdempotencyTable": idemActions, "OrdersTable": {"dynamodb:PutItem"}},
	}
	for _, fn := range tpl.Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			if _, ok := fn.Properties["Policies"].([]any); !ok {
				t.Fatalf("Policies is %T, want a list of inline statements", fn.Properties["Policies"])
			}
			for _, p := range fn.Properties["Policies"].([]any) {
				if _, ok := p.(map[string]any); !ok {
					t.Errorf("policy %#v is not an inline statement list (managed policies and SAM templates are too broad to check)", p)
				}
			}
			got := map[string][]string{}
			for _, s := range fn.Statements {
				if s.Effect != "Allow" {
					continue
				}
				for _, res := range s.Resources {
					att, ok := res.(Intrinsic)
					if !ok || att.Name != "Fn::GetAtt" || asStrings(att.Arg)[1] != "Arn" {
						t.Errorf("resource %#v: want !GetAtt <Table>.Arn", res)
						continue
					}
					table := asStrings(att.Arg)[0]
					got[table] = append(got[table], s.Actions...)
				}
			}
			for table := range got {
				sort.Strings(got[table])
			}
			if !reflect.DeepEqual(got, want[fn.LogicalID]) {
				t.Errorf("actions by table = %v, want %v", got, want[fn.LogicalID])
			}
			if tbl := ownTable(t, fn); want[fn.LogicalID][tbl] == nil {
				t.Errorf("the function's own table %s has no allowed actions", tbl)
			}
			if idem := idempotencyTable(t, fn); idem != "IdempotencyTable" {
				t.Errorf("IDEMPOTENCY_TABLE refers to %s", idem)
			}
		})
	}
}

func TestSAMConfig(t *testing.T) {
	c, err := ReadSAMConfig(filepath.Join(repoRoot, "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "0.1" {
		t.Errorf("version = %q, want 0.1", c.Version)
	}
	for _, tt := range []struct {
		command, key string
		want         any
	}{
		{command: "deploy", key: "stack_name", want: "idemlambda"},
		{command: "build", key: "stack_name", want: "idemlambda"},
		{command: "deploy", key: "capabilities", want: "CAPABILITY_IAM"},
		{command: "deploy", key: "resolve_s3", want: true},
		{command: "deploy", key: "confirm_changeset", want: false},
	} {
		if got, ok := c.Get("default", tt.command, tt.key); !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("default.%s %s = %#v (set: %v), want %#v", tt.command, tt.key, got, ok, tt.want)
		}
	}
	for name, table := range c.Tables {
		if _, ok := table["region"]; ok {
			t.Errorf("[%s] sets region; leave it to the user's profile", name)
		}
	}
}

// buildFlags is what every build-<LogicalId> target must run: a static,
// stripped linux/arm64 binary without the RPC runtime.
const buildFlags = `CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags "-s -w"`

func TestFunctionsBuildViaMakefile(t *testing.T) {
	tpl := repoTemplate(t)
	for _, fn := range tpl.Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			pkg := fn.HandlerPackage()
			if _, err := os.Stat(filepath.Join(repoRoot, pkg)); os.IsNotExist(err) {
				t.Skipf("%s does not exist yet: nothing to build for %s", pkg, fn.LogicalID)
			}
			dir := t.TempDir()
			target := "build-" + fn.LogicalID
			dry := exec.Command("make", "-n", target, "ARTIFACTS_DIR="+dir)
			dry.Dir = repoRoot
			out, err := dry.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", target, err, out)
			}
			if !strings.Contains(string(out), buildFlags) || !strings.Contains(string(out), pkg) {
				t.Errorf("make %s runs:\n%s\nwant a command containing %s ... %s", target, out, buildFlags, pkg)
			}
			build := exec.Command("make", target, "ARTIFACTS_DIR="+dir)
			build.Dir = repoRoot
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("make %s: %v\n%s", target, err, out)
			}
			f, err := elf.Open(filepath.Join(dir, "bootstrap"))
			if err != nil {
				t.Fatalf("the artifact is not an ELF bootstrap: %v", err)
			}
			defer f.Close()
			if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_AARCH64 {
				t.Errorf("bootstrap is %v %v, want ELFCLASS64 EM_AARCH64", f.Class, f.Machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("bootstrap is dynamically linked (has an interpreter); want CGO_ENABLED=0")
				}
			}
			if f.Section(".symtab") != nil {
				t.Error("bootstrap has a symbol table; want -ldflags \"-s -w\"")
			}
		})
	}
}
