package samtemplate

import (
	"debug/elf"
	"fmt"
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

const repoRoot = "../../.."

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

// walkStatements calls fn for every map in v that looks like an IAM statement
// (it has an Effect), wherever it is.
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

// logStreams is the one Resource with a wildcard a role may hold: the streams
// of its function's own log group (Lambda names the streams itself).
func logStreams(logGroup string) Intrinsic {
	return Intrinsic{Name: "Fn::Sub", Arg: "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${" + logGroup + "}:log-stream:*"}
}

// functionRole returns the role fn runs as and the logical id of its log group.
func functionRole(t *testing.T, tpl *Template, fn Function) (Role, string) {
	t.Helper()
	role, ok := tpl.FunctionRole(fn)
	if !ok {
		t.Fatalf("%s: Role = %#v, want !GetAtt <%s>.Arn of a role in the template", fn.LogicalID, fn.Role, TypeRole)
	}
	lg, attr, ok := Target(fn.LogGroup)
	if !ok || attr != "" || tpl.Resources[lg].Type != TypeLogGroup {
		t.Fatalf("%s: LoggingConfig.LogGroup = %#v, want !Ref of a %s", fn.LogicalID, fn.LogGroup, TypeLogGroup)
	}
	return role, lg
}

func TestTemplateFunctionRoles(t *testing.T) {
	tpl := repoTemplate(t)
	roleOf := map[string]string{}     // role -> function
	logGroupOf := map[string]string{} // log group -> function
	for _, fn := range tpl.Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			// With Role set SAM attaches nothing to the role: Policies would be ignored, and only mislead.
			if p, ok := fn.Properties["Policies"]; ok {
				t.Errorf("Policies = %#v; a function with a Role must have none", p)
			}
			role, logGroup := functionRole(t, tpl, fn)
			if other, ok := roleOf[role.LogicalID]; ok {
				t.Errorf("role %s is shared with %s", role.LogicalID, other)
			}
			roleOf[role.LogicalID] = fn.LogicalID
			if other, ok := logGroupOf[logGroup]; ok {
				t.Errorf("log group %s is shared with %s", logGroup, other)
			}
			logGroupOf[logGroup] = fn.LogicalID

			wantTrust := []Statement{{Effect: "Allow", Actions: []string{"sts:AssumeRole"}, Principal: map[string]any{"Service": "lambda.amazonaws.com"}}}
			if !reflect.DeepEqual(role.Trust, wantTrust) {
				t.Errorf("%s trust = %#v, want only Lambda assuming it: %#v", role.LogicalID, role.Trust, wantTrust)
			}
			if len(role.ManagedPolicyArns) != 0 {
				t.Errorf("%s ManagedPolicyArns = %v, want none (managed policies grant on every resource)", role.LogicalID, role.ManagedPolicyArns)
			}
			if _, ok := role.Properties["PermissionsBoundary"]; ok {
				t.Errorf("%s has a PermissionsBoundary; the inline policies are the whole grant", role.LogicalID)
			}

			if fn.LogFormat != "JSON" {
				t.Errorf("LoggingConfig.LogFormat = %q, want JSON", fn.LogFormat)
			}
			// Lambda filters JSON application logs by their level: it must let through what LOG_LEVEL lets the function write.
			if got := asMap(fn.Properties["LoggingConfig"])["ApplicationLogLevel"]; !reflect.DeepEqual(got, fn.Environment["LOG_LEVEL"]) {
				t.Errorf("LoggingConfig.ApplicationLogLevel = %#v, want LOG_LEVEL's %#v", got, fn.Environment["LOG_LEVEL"])
			}
			if days := asInt(tpl.Resources[logGroup].Properties["RetentionInDays"]); days <= 0 {
				t.Errorf("%s has no RetentionInDays (logs would be kept forever)", logGroup)
			}
		})
	}
	for _, r := range tpl.Roles() {
		if _, ok := roleOf[r.LogicalID]; !ok {
			t.Errorf("role %s is no function's role", r.LogicalID)
		}
	}
	for _, r := range tpl.ResourcesOfType(TypeLogGroup) {
		if _, ok := logGroupOf[r.LogicalID]; !ok {
			t.Errorf("log group %s is no function's log group", r.LogicalID)
		}
	}
}

// arnResources are the types whose !GetAtt .Arn a role may be granted on.
var arnResources = map[string]bool{TypeTable: true, TypeQueue: true, typeKMSKey: true}

const typeKMSKey = "AWS::KMS::Key"

// keyAdmin is the one statement a KMS key's policy may hold: the account
// administers the key through IAM, so the roles' inline policies stay the
// whole grant of the functions.
var keyAdmin = map[string]any{
	"Sid":       "AccountAdministers",
	"Effect":    "Allow",
	"Principal": map[string]any{"AWS": Intrinsic{Name: "Fn::Sub", Arg: "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
	"Action":    "kms:*",
	"Resource":  "*",
}

func TestTemplateIAMHasNoWildcards(t *testing.T) {
	tpl := repoTemplate(t)
	for id, r := range tpl.Resources {
		if r.Type == TypeRole {
			continue
		}
		walkStatements(r.Properties, func(s map[string]any) {
			if r.Type == typeKMSKey && reflect.DeepEqual(s, keyAdmin) {
				return
			}
			t.Errorf("%s: IAM statement %v outside a function's role", id, s)
		})
	}
	n := 0
	for _, fn := range tpl.Functions() {
		role, logGroup := functionRole(t, tpl, fn)
		raw := 0
		walkStatements(role.Properties["Policies"], func(s map[string]any) {
			raw++
			for _, key := range []string{"NotAction", "NotResource", "NotPrincipal", "Principal"} {
				if _, ok := s[key]; ok {
					t.Errorf("%s: a statement has %s", role.LogicalID, key)
				}
			}
		})
		stmts := role.Statements()
		if raw != len(stmts) {
			t.Errorf("%s: %d statements in the policies, %d read", role.LogicalID, raw, len(stmts))
		}
		n += len(stmts)
		for _, s := range stmts {
			if s.Effect != "Allow" {
				t.Errorf("%s %s: Effect %q", role.LogicalID, s.Sid, s.Effect)
			}
			if len(s.Actions) == 0 || len(s.Resources) == 0 {
				t.Errorf("%s %s: actions %v on %v", role.LogicalID, s.Sid, s.Actions, s.Resources)
			}
			for _, a := range s.Actions {
				if service, name, ok := strings.Cut(a, ":"); !ok || service == "" || name == "" || strings.ContainsAny(a, "*?") {
					t.Errorf("%s %s: action %q is not one named action", role.LogicalID, s.Sid, a)
				}
			}
			for _, res := range s.Resources {
				if reflect.DeepEqual(res, logStreams(logGroup)) {
					continue // the function's own log group's streams
				}
				id, attr, ok := Target(res)
				if !ok || attr != "Arn" || !arnResources[tpl.Resources[id].Type] {
					t.Errorf("%s %s: resource %#v is not !GetAtt <table or queue>.Arn nor %s's log streams", role.LogicalID, s.Sid, res, logGroup)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no IAM statements found")
	}
}

// grants returns the actions fn's role allows, sorted, by resource: the
// logical id for !GetAtt <id>.Arn, "<LogGroup>:log-stream:*" for the streams
// of the function's log group, the resource as Go syntax otherwise.
func grants(t *testing.T, tpl *Template, fn Function) map[string][]string {
	t.Helper()
	role, logGroup := functionRole(t, tpl, fn)
	got := map[string][]string{}
	for _, s := range role.Statements() {
		if s.Effect != "Allow" {
			continue
		}
		for _, res := range s.Resources {
			key := fmt.Sprintf("%#v", res)
			if id, attr, ok := Target(res); ok && attr == "Arn" {
				key = id
			} else if reflect.DeepEqual(res, logStreams(logGroup)) {
				key = logGroup + ":log-stream:*"
			}
			got[key] = append(got[key], s.Actions...)
		}
	}
	for k := range got {
		sort.Strings(got[k])
	}
	return got
}

// grantsWithPrefix keeps the actions of one service ("dynamodb:", ...).
func grantsWithPrefix(all map[string][]string, prefix string) map[string][]string {
	out := map[string][]string{}
	for res, actions := range all {
		for _, a := range actions {
			if strings.HasPrefix(a, prefix) {
				out[res] = append(out[res], a)
			}
		}
	}
	return out
}

var (
	idemActions = []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
	logActions  = []string{"logs:CreateLogStream", "logs:PutLogEvents"}
	// sqsActions are what the SQS event source mapping calls with the function's role.
	sqsActions = []string{"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}

	wantDynamoDB = map[string]map[string][]string{
		"PaymentsFunction": {"IdempotencyTable": idemActions, "PaymentsTable": {"dynamodb:GetItem", "dynamodb:PutItem"}},
		"OrdersFunction":   {"IdempotencyTable": append([]string{"dynamodb:BatchGetItem"}, idemActions...), "OrdersTable": {"dynamodb:PutItem"}},
	}
	wantSQS = map[string]map[string][]string{
		"PaymentsFunction": {},
		"OrdersFunction":   {"OrdersQueue": sqsActions},
	}
	wantLogs = map[string]map[string][]string{
		"PaymentsFunction": {"PaymentsLogGroup:log-stream:*": logActions},
		"OrdersFunction":   {"OrdersLogGroup:log-stream:*": logActions},
	}
)

func TestTemplateDynamoDBActions(t *testing.T) {
	tpl := repoTemplate(t)
	for _, fn := range tpl.Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			got := grantsWithPrefix(grants(t, tpl, fn), "dynamodb:")
			if !reflect.DeepEqual(got, wantDynamoDB[fn.LogicalID]) {
				t.Errorf("actions by table = %v, want %v", got, wantDynamoDB[fn.LogicalID])
			}
			if tbl := ownTable(t, fn); got[tbl] == nil {
				t.Errorf("the function's own table %s has no allowed actions", tbl)
			}
			if idem := idempotencyTable(t, fn); idem != "IdempotencyTable" {
				t.Errorf("IDEMPOTENCY_TABLE refers to %s", idem)
			}
		})
	}
}

// TestTemplateKMSActions: each role may only seal and open stored results
// (idemkms) under the template's key, and only with idemkms's encryption
// context.
func TestTemplateKMSActions(t *testing.T) {
	tpl := repoTemplate(t)
	want := map[string][]string{"IdempotencyKey": {"kms:Decrypt", "kms:GenerateDataKey"}}
	wantCond := map[string]any{
		"StringEquals":              map[string]any{"kms:EncryptionContext:purpose": "idemlambda-idempotency-record"},
		"ForAllValues:StringEquals": map[string]any{"kms:EncryptionContextKeys": []any{"purpose"}},
	}
	for _, fn := range tpl.Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			if got := grantsWithPrefix(grants(t, tpl, fn), "kms:"); !reflect.DeepEqual(got, want) {
				t.Errorf("actions by key = %v, want %v", got, want)
			}
			role, _ := functionRole(t, tpl, fn)
			n := 0
			walkStatements(role.Properties["Policies"], func(s map[string]any) {
				if fmt.Sprint(s["Action"]) != "[kms:GenerateDataKey kms:Decrypt]" {
					return
				}
				n++
				if !reflect.DeepEqual(s["Condition"], wantCond) {
					t.Errorf("KMS statement condition %#v, want %#v", s["Condition"], wantCond)
				}
			})
			if n != 1 {
				t.Errorf("%d KMS statements, want 1", n)
			}
		})
	}
	if tpl.Resources["IdempotencyKey"].Type != typeKMSKey {
		t.Fatal("no IdempotencyKey")
	}
}

func TestTemplateSQSActions(t *testing.T) {
	tpl := repoTemplate(t)
	for _, fn := range tpl.Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			got := grantsWithPrefix(grants(t, tpl, fn), "sqs:")
			if !reflect.DeepEqual(got, wantSQS[fn.LogicalID]) {
				t.Errorf("actions by queue = %v, want %v", got, wantSQS[fn.LogicalID])
			}
			// Exactly the queues of the function's SQS events.
			events := map[string][]string{}
			for _, e := range fn.Events {
				if e.Type != "SQS" {
					continue
				}
				id, attr, ok := Target(e.Queue)
				if !ok || attr != "Arn" {
					t.Fatalf("event %s: Queue %#v, want !GetAtt <queue>.Arn", e.Name, e.Queue)
				}
				events[id] = sqsActions
			}
			if !reflect.DeepEqual(got, events) {
				t.Errorf("actions by queue = %v; the SQS events need %v", got, events)
			}
		})
	}
}

func TestTemplateLogActions(t *testing.T) {
	tpl := repoTemplate(t)
	for _, fn := range tpl.Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			_, logGroup := functionRole(t, tpl, fn)
			got := grantsWithPrefix(grants(t, tpl, fn), "logs:")
			want := map[string][]string{logGroup + ":log-stream:*": logActions}
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, wantLogs[fn.LogicalID]) {
				t.Errorf("log actions = %v, want %v", got, want)
			}
		})
	}
}

// TestTemplateRoleActions checks that the roles allow nothing beyond the
// DynamoDB, SQS, log and KMS actions above.
func TestTemplateRoleActions(t *testing.T) {
	tpl := repoTemplate(t)
	for _, fn := range tpl.Functions() {
		t.Run(fn.LogicalID, func(t *testing.T) {
			want := map[string][]string{}
			wantKMS := map[string][]string{"IdempotencyKey": {"kms:Decrypt", "kms:GenerateDataKey"}}
			for _, m := range []map[string]map[string][]string{wantDynamoDB, wantSQS, wantLogs, {fn.LogicalID: wantKMS}} {
				for res, actions := range m[fn.LogicalID] {
					want[res] = append(want[res], actions...)
				}
			}
			for res := range want {
				sort.Strings(want[res])
			}
			if got := grants(t, tpl, fn); !reflect.DeepEqual(got, want) {
				t.Errorf("actions by resource = %v, want %v", got, want)
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
