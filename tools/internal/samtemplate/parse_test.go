package samtemplate

import (
	"reflect"
	"strings"
	"testing"
)

const sample = `
Parameters:
  Stage: {Type: String, Default: dev}
  TTL: {Type: Number, Default: 60}
  NoDefault: {Type: String}
Globals:
  Function:
    Runtime: provided.al2023
    Architectures: [arm64]
    Environment:
      Variables:
        SHARED: !Ref Stage
        OVERRIDDEN: global
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: N}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
  Queue:
    Type: AWS::SQS::Queue
  Logs:
    Type: AWS::Logs::LogGroup
  FnRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
      ManagedPolicyArns: [!Sub "arn:${AWS::Partition}:iam::aws:policy/Nope"]
      Policies:
        - PolicyName: one
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: [sqs:ReceiveMessage], Resource: !GetAtt Queue.Arn}
        - PolicyName: two
          PolicyDocument:
            Statement:
              - {Sid: Logs, Effect: Allow, Action: logs:PutLogEvents, Resource: [!Sub "${Logs.Arn}", x]}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties:
      Runtime: go1.x
      Role: !GetAtt FnRole.Arn
      LoggingConfig: {LogGroup: !Ref Logs, LogFormat: JSON}
      Environment:
        Variables:
          OVERRIDDEN: mine
          TABLE: {"Ref": "Table"}
          ARN: !GetAtt Table.Arn
          LONG_ARN: {"Fn::GetAtt": [Queue, Arn]}
          SUB: !Sub "${AWS::StackName}-${Stage}-${Table}-${!Literal}"
          SUB_VARS: !Sub ["${x}/${Table.Arn}", {x: !Ref TTL}]
          JOIN: !Join [":", [a, !Ref Stage, 3]]
          NUM: 42
          MISSING: !Ref NoDefault
          ROLE_ARN: !GetAtt FnRole.Arn
          LOGS_ARN: !GetAtt Logs.Arn
      Policies:
        - Statement:
            Effect: Allow
            Action: dynamodb:GetItem
            Resource: !GetAtt Table.Arn
        - AWSLambdaBasicExecutionRole
      Events:
        Get:
          Type: HttpApi
          Properties: {Method: get, Path: "/things/{id}"}
        Messages:
          Type: SQS
          Properties: {Queue: !GetAtt Queue.Arn, BatchSize: 5, FunctionResponseTypes: [ReportBatchItemFailures]}
`

func TestParseIntrinsics(t *testing.T) {
	tpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	fn, ok := tpl.Function("Fn")
	if !ok {
		t.Fatal("function Fn not found")
	}
	env := fn.Environment
	tests := []struct {
		name string
		key  string
		want any
	}{
		{name: "short Ref", key: "SHARED", want: Intrinsic{Name: "Ref", Arg: "Stage"}},
		{name: "long Ref", key: "TABLE", want: Intrinsic{Name: "Ref", Arg: "Table"}},
		{name: "short GetAtt splits at the dot", key: "ARN", want: Intrinsic{Name: "Fn::GetAtt", Arg: []any{"Table", "Arn"}}},
		{name: "long GetAtt", key: "LONG_ARN", want: Intrinsic{Name: "Fn::GetAtt", Arg: []any{"Queue", "Arn"}}},
		{name: "number stays a number", key: "NUM", want: 42},
		{name: "function overrides a global", key: "OVERRIDDEN", want: "mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := env[tt.key]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.key, got, tt.want)
			}
		})
	}
}

func TestFunctionsMergeGlobals(t *testing.T) {
	tpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	fn, _ := tpl.Function("Fn")
	if fn.Runtime != "go1.x" {
		t.Errorf("Runtime = %q, want the function's own go1.x", fn.Runtime)
	}
	if !reflect.DeepEqual(fn.Architectures, []string{"arm64"}) {
		t.Errorf("Architectures = %v, want [arm64] from Globals", fn.Architectures)
	}
	if fn.BuildMethod != "makefile" || fn.Timeout != 3 || fn.MemorySize != 128 {
		t.Errorf("BuildMethod %q Timeout %d MemorySize %d", fn.BuildMethod, fn.Timeout, fn.MemorySize)
	}
	if len(fn.Events) != 2 || fn.Events[0].Name != "Get" || fn.Events[0].Method != "GET" || fn.Events[0].Path != "/things/{id}" {
		t.Errorf("events = %+v", fn.Events)
	}
	sqs := fn.Events[1]
	if sqs.Type != "SQS" || sqs.BatchSize != 5 || !reflect.DeepEqual(sqs.FunctionResponseTypes, []string{"ReportBatchItemFailures"}) {
		t.Errorf("SQS event = %+v", sqs)
	}
	want := []Statement{{Effect: "Allow", Actions: []string{"dynamodb:GetItem"}, Resources: []any{Intrinsic{Name: "Fn::GetAtt", Arg: []any{"Table", "Arn"}}}}}
	if !reflect.DeepEqual(fn.Statements, want) {
		t.Errorf("statements = %#v, want %#v", fn.Statements, want)
	}
}

func TestRoles(t *testing.T) {
	tpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	fn, _ := tpl.Function("Fn")
	if fn.LogFormat != "JSON" || !reflect.DeepEqual(fn.LogGroup, Intrinsic{Name: "Ref", Arg: "Logs"}) {
		t.Errorf("LoggingConfig: LogGroup %#v, LogFormat %q", fn.LogGroup, fn.LogFormat)
	}
	role, ok := tpl.FunctionRole(fn)
	if !ok || role.LogicalID != "FnRole" {
		t.Fatalf("FunctionRole = %+v, %v; want FnRole", role, ok)
	}
	wantTrust := []Statement{{Effect: "Allow", Actions: []string{"sts:AssumeRole"}, Principal: map[string]any{"Service": "lambda.amazonaws.com"}}}
	if !reflect.DeepEqual(role.Trust, wantTrust) {
		t.Errorf("Trust = %#v, want %#v", role.Trust, wantTrust)
	}
	if len(role.ManagedPolicyArns) != 1 {
		t.Errorf("ManagedPolicyArns = %#v", role.ManagedPolicyArns)
	}
	if len(role.Policies) != 2 || role.Policies[0].Name != "one" || role.Policies[1].Name != "two" {
		t.Fatalf("Policies = %+v", role.Policies)
	}
	want := []Statement{
		{Effect: "Allow", Actions: []string{"sqs:ReceiveMessage"}, Resources: []any{Intrinsic{Name: "Fn::GetAtt", Arg: []any{"Queue", "Arn"}}}},
		{Sid: "Logs", Effect: "Allow", Actions: []string{"logs:PutLogEvents"}, Resources: []any{Intrinsic{Name: "Fn::Sub", Arg: "${Logs.Arn}"}, "x"}},
	}
	if got := role.Statements(); !reflect.DeepEqual(got, want) {
		t.Errorf("Statements = %#v, want %#v", got, want)
	}

	for _, tt := range []struct {
		name string
		role any
	}{
		{name: "no Role", role: nil},
		{name: "literal ARN", role: "arn:aws:iam::000000000000:role/FnRole"},
		{name: "!Ref of the role", role: Intrinsic{Name: "Ref", Arg: "FnRole"}},
		{name: "!GetAtt of a non-role", role: Intrinsic{Name: "Fn::GetAtt", Arg: []any{"Queue", "Arn"}}},
		{name: "!GetAtt of another attribute", role: Intrinsic{Name: "Fn::GetAtt", Arg: []any{"FnRole", "RoleId"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := fn
			f.Role = tt.role
			if r, ok := tpl.FunctionRole(f); ok {
				t.Errorf("FunctionRole = %+v, want none", r)
			}
		})
	}
}

func TestTarget(t *testing.T) {
	for _, tt := range []struct {
		v        any
		id, attr string
		ok       bool
	}{
		{v: Intrinsic{Name: "Ref", Arg: "Table"}, id: "Table", ok: true},
		{v: Intrinsic{Name: "Fn::GetAtt", Arg: []any{"Table", "Arn"}}, id: "Table", attr: "Arn", ok: true},
		{v: Intrinsic{Name: "Fn::GetAtt", Arg: []any{"Table"}}},
		{v: Intrinsic{Name: "Fn::Sub", Arg: "${Table}"}},
		{v: "Table"},
		{v: nil},
	} {
		id, attr, ok := Target(tt.v)
		if id != tt.id || attr != tt.attr || ok != tt.ok {
			t.Errorf("Target(%#v) = %q, %q, %v; want %q, %q, %v", tt.v, id, attr, ok, tt.id, tt.attr, tt.ok)
		}
	}
}

func TestTables(t *testing.T) {
	tpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	tables := tpl.Tables()
	if len(tables) != 1 {
		t.Fatalf("tables = %+v", tables)
	}
	want := []Key{{Name: "pk", KeyType: "HASH", AttributeType: "S"}, {Name: "sk", KeyType: "RANGE", AttributeType: "N"}}
	if got := tables[0]; !reflect.DeepEqual(got.Keys, want) || got.TTLAttribute != "ttl" || !got.TTLEnabled {
		t.Errorf("table = %+v", got)
	}
}

func TestResolver(t *testing.T) {
	tpl, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	fn, _ := tpl.Function("Fn")
	r := &Resolver{Template: tpl, Names: map[string]string{"Table": "local-table", "Queue": "local-queue", "FnRole": "FnRole", "Logs": "Logs"}, Params: map[string]string{"TTL": "7"}}
	tests := []struct {
		key, want, wantErr string
	}{
		{key: "SHARED", want: "dev"},
		{key: "TABLE", want: "local-table"},
		{key: "ARN", want: "arn:aws:dynamodb:us-east-1:000000000000:table/local-table"},
		{key: "LONG_ARN", want: "arn:aws:sqs:us-east-1:000000000000:local-queue"},
		{key: "SUB", want: "idemlambda-dev-local-table-${Literal}"},
		{key: "SUB_VARS", want: "7/arn:aws:dynamodb:us-east-1:000000000000:table/local-table"},
		{key: "JOIN", want: "a:dev:3"},
		{key: "NUM", want: "42"},
		{key: "MISSING", wantErr: "NoDefault has no default"},
		{key: "ROLE_ARN", want: "arn:aws:iam::000000000000:role/FnRole"},
		{key: "LOGS_ARN", want: "arn:aws:logs:us-east-1:000000000000:log-group:Logs:*"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, err := r.Resolve(fn.Environment[tt.key])
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := r.Resolve(Intrinsic{Name: "Ref", Arg: "Nope"}); err == nil {
		t.Error("!Ref of an unknown name resolved")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{name: "not yaml", yaml: "a: [b"},
		{name: "not a mapping", yaml: "- a\n- b\n"},
		{name: "resource without type", yaml: "Resources:\n  X:\n    Properties: {}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.yaml)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestParseSAMConfig(t *testing.T) {
	c, err := ParseSAMConfig([]byte(`
version = 0.1 # comment
[default.global.parameters]
stack_name = "idem#lambda"
tags = ['a=b', "c=\"d\""]
[default.deploy.parameters]
resolve_s3 = true
retries = 1_000
parameter_overrides = [
  "LogLevel=DEBUG",   # multi-line arrays and comments, as sam deploy --guided writes
  """Name=multi""",
]
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "0.1" {
		t.Errorf("Version = %q", c.Version)
	}
	for _, tt := range []struct {
		command, key string
		want         any
	}{
		{command: "deploy", key: "stack_name", want: "idem#lambda"},
		{command: "deploy", key: "resolve_s3", want: true},
		{command: "deploy", key: "retries", want: int64(1000)},
		{command: "build", key: "tags", want: []any{"a=b", `c="d"`}},
		{command: "deploy", key: "parameter_overrides", want: []any{"LogLevel=DEBUG", "Name=multi"}},
	} {
		if got, ok := c.Get("default", tt.command, tt.key); !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Get(default, %s, %s) = %#v, %v; want %#v", tt.command, tt.key, got, ok, tt.want)
		}
	}
	for _, bad := range []string{
		"version = 0.1\n[a]\nx = \"\"\"multi\n",
		"version = 0.1\nx = 1\nx = 2\n",
		"version = 0.1\n[[arr]]\n",
		"version = 0.1\nx = nope\n",
		"x = 1\n",
		"version = 0.1\ndefault = 1\n",
		"version = 0.1\n[default]\ndeploy = \"x\"\n",
		"version = 0.1\n[default.deploy]\nparameters = [1]\n",
		"version = [0]\n",
	} {
		if _, err := ParseSAMConfig([]byte(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
	_, err = ParseSAMConfig([]byte("version = 0.1\n[default.deploy.parameters]\nstack_name = \"unterminated\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("syntax error %v, want one that names line 3", err)
	}
}
