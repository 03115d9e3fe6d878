package samtemplate

import (
	"fmt"
	"sort"
	"strings"
)

// Resource types this package understands.
const (
	TypeFunction = "AWS::Serverless::Function"
	TypeTable    = "AWS::DynamoDB::Table"
	TypeQueue    = "AWS::SQS::Queue"
	TypeHTTPAPI  = "AWS::Serverless::HttpApi"
	TypeRole     = "AWS::IAM::Role"
	TypeLogGroup = "AWS::Logs::LogGroup"
)

// Function is an AWS::Serverless::Function with the template's Globals merged in.
type Function struct {
	LogicalID     string
	Runtime       string
	Handler       string
	Architectures []string
	CodeURI       string
	// BuildMethod is Metadata.BuildMethod ("makefile" for this project).
	BuildMethod string
	// Timeout is in seconds (Lambda's default 3 when the template sets none).
	Timeout    int
	MemorySize int
	// Environment is Environment.Variables; values may be Intrinsics (see Resolver).
	Environment map[string]any
	Events      []Event
	// Statements are the inline IAM statements of Policies (managed policy
	// names and SAM policy templates are in Properties["Policies"]).
	Statements []Statement
	// Role is the Role property (an ARN, usually !GetAtt <Role>.Arn), nil
	// when SAM makes the role; see Template.FunctionRole.
	Role any
	// LogGroup and LogFormat are LoggingConfig's; LogGroup is a name, usually
	// !Ref <LogGroup>, nil for Lambda's default /aws/lambda/<name>.
	LogGroup   any
	LogFormat  string
	Properties map[string]any
}

// Event is one entry of a function's Events, sorted by name.
type Event struct {
	Name string
	Type string // HttpApi, Api, SQS, ...
	// HttpApi and Api events.
	Method, Path string
	// SQS events.
	Queue                 any
	BatchSize             int
	FunctionResponseTypes []string
	Properties            map[string]any
}

// Statement is an IAM policy statement.
type Statement struct {
	Sid       string
	Effect    string
	Actions   []string
	Resources []any
	// Principal is set in trust policies (AssumeRolePolicyDocument).
	Principal any
}

// Role is an AWS::IAM::Role.
type Role struct {
	LogicalID string
	// Trust is the AssumeRolePolicyDocument's statements.
	Trust []Statement
	// Policies are the inline policies, in template order.
	Policies          []Policy
	ManagedPolicyArns []any
	Properties        map[string]any
}

// Policy is an inline policy of a role.
type Policy struct {
	Name       string
	Statements []Statement
}

// Statements returns the statements of all the role's inline policies.
func (r Role) Statements() []Statement {
	var out []Statement
	for _, p := range r.Policies {
		out = append(out, p.Statements...)
	}
	return out
}

// Table is an AWS::DynamoDB::Table.
type Table struct {
	LogicalID string
	// TableName is the literal TableName property, "" when CloudFormation names it.
	TableName   string
	BillingMode string
	Keys        []Key
	// TTLAttribute is TimeToLiveSpecification.AttributeName when TTLEnabled.
	TTLAttribute string
	TTLEnabled   bool
	PITR         bool
	SSE          bool
	Properties   map[string]any
}

// Key is one element of a table's KeySchema, with its AttributeType.
type Key struct {
	Name          string
	KeyType       string // HASH or RANGE
	AttributeType string // S, N or B
}

// Functions returns the template's functions, sorted by logical id.
func (t *Template) Functions() []Function {
	globals := asMap(t.Globals["Function"])
	var out []Function
	for _, r := range t.ResourcesOfType(TypeFunction) {
		props := mergeGlobals(globals, r.Properties)
		fn := Function{
			LogicalID:     r.LogicalID,
			Runtime:       asString(props["Runtime"]),
			Handler:       asString(props["Handler"]),
			Architectures: asStrings(props["Architectures"]),
			CodeURI:       asString(props["CodeUri"]),
			BuildMethod:   asString(r.Metadata["BuildMethod"]),
			Timeout:       asInt(props["Timeout"]),
			MemorySize:    asInt(props["MemorySize"]),
			Environment:   asMap(asMap(props["Environment"])["Variables"]),
			Role:          props["Role"],
			LogGroup:      asMap(props["LoggingConfig"])["LogGroup"],
			LogFormat:     asString(asMap(props["LoggingConfig"])["LogFormat"]),
			Properties:    props,
		}
		if fn.Timeout == 0 {
			fn.Timeout = 3
		}
		if fn.MemorySize == 0 {
			fn.MemorySize = 128
		}
		if len(fn.Architectures) == 0 {
			fn.Architectures = []string{"x86_64"}
		}
		for name, e := range asMap(props["Events"]) {
			em := asMap(e)
			ep := asMap(em["Properties"])
			fn.Events = append(fn.Events, Event{
				Name:                  name,
				Type:                  asString(em["Type"]),
				Method:                strings.ToUpper(asString(ep["Method"])),
				Path:                  asString(ep["Path"]),
				Queue:                 ep["Queue"],
				BatchSize:             asInt(ep["BatchSize"]),
				FunctionResponseTypes: asStrings(ep["FunctionResponseTypes"]),
				Properties:            ep,
			})
		}
		sort.Slice(fn.Events, func(i, j int) bool { return fn.Events[i].Name < fn.Events[j].Name })
		policies, ok := props["Policies"].([]any)
		if !ok {
			policies = []any{props["Policies"]}
		}
		for _, p := range policies {
			fn.Statements = append(fn.Statements, statements(p)...)
		}
		out = append(out, fn)
	}
	return out
}

// statements reads the Statement list (or single statement) of a policy document.
func statements(doc any) []Statement {
	stmts, ok := asMap(doc)["Statement"].([]any)
	if !ok {
		if s, isMap := asMap(doc)["Statement"].(map[string]any); isMap {
			stmts = []any{s}
		}
	}
	var out []Statement
	for _, s := range stmts {
		sm := asMap(s)
		res, ok := sm["Resource"].([]any)
		if !ok && sm["Resource"] != nil {
			res = []any{sm["Resource"]}
		}
		out = append(out, Statement{
			Sid:       asString(sm["Sid"]),
			Effect:    asString(sm["Effect"]),
			Actions:   asStrings(sm["Action"]),
			Resources: res,
			Principal: sm["Principal"],
		})
	}
	return out
}

// Roles returns the template's IAM roles, sorted by logical id.
func (t *Template) Roles() []Role {
	var out []Role
	for _, r := range t.ResourcesOfType(TypeRole) {
		p := r.Properties
		role := Role{
			LogicalID:         r.LogicalID,
			Trust:             statements(p["AssumeRolePolicyDocument"]),
			ManagedPolicyArns: asSlice(p["ManagedPolicyArns"]),
			Properties:        p,
		}
		for _, pol := range asSlice(p["Policies"]) {
			pm := asMap(pol)
			role.Policies = append(role.Policies, Policy{Name: asString(pm["PolicyName"]), Statements: statements(pm["PolicyDocument"])})
		}
		out = append(out, role)
	}
	return out
}

// FunctionRole returns the role a function runs as when its Role property
// is !GetAtt <Role>.Arn of a role in the template (ok false otherwise, e.g.
// when SAM makes the role).
func (t *Template) FunctionRole(fn Function) (Role, bool) {
	id, attr, ok := Target(fn.Role)
	if !ok || attr != "Arn" {
		return Role{}, false
	}
	for _, r := range t.Roles() {
		if r.LogicalID == id {
			return r, true
		}
	}
	return Role{}, false
}

// Target returns the logical id a !Ref (attr "") or !GetAtt (attr the
// attribute) refers to; ok is false for anything else.
func Target(v any) (logicalID, attr string, ok bool) {
	in, isIntrinsic := v.(Intrinsic)
	if !isIntrinsic {
		return "", "", false
	}
	switch in.Name {
	case "Ref":
		id, isString := in.Arg.(string)
		return id, "", isString && id != ""
	case "Fn::GetAtt":
		parts := asStrings(in.Arg)
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return "", "", false
		}
		return parts[0], parts[1], true
	}
	return "", "", false
}

// Function returns the function with the given logical id.
func (t *Template) Function(logicalID string) (Function, bool) {
	for _, fn := range t.Functions() {
		if fn.LogicalID == logicalID {
			return fn, true
		}
	}
	return Function{}, false
}

// mergeGlobals applies SAM's Globals rules: the function's scalars win, maps
// are merged recursively, lists are appended to the globals' list.
func mergeGlobals(globals, props map[string]any) map[string]any {
	out := make(map[string]any, len(globals)+len(props))
	for k, v := range globals {
		out[k] = v
	}
	for k, v := range props {
		g, ok := out[k]
		if !ok {
			out[k] = v
			continue
		}
		gm, gIsMap := g.(map[string]any)
		vm, vIsMap := v.(map[string]any)
		gl, gIsList := g.([]any)
		vl, vIsList := v.([]any)
		switch {
		case gIsMap && vIsMap:
			out[k] = mergeGlobals(gm, vm)
		case gIsList && vIsList:
			out[k] = append(append([]any{}, gl...), vl...)
		default:
			out[k] = v
		}
	}
	return out
}

// Tables returns the template's DynamoDB tables, sorted by logical id.
func (t *Template) Tables() []Table {
	var out []Table
	for _, r := range t.ResourcesOfType(TypeTable) {
		p := r.Properties
		attrTypes := map[string]string{}
		for _, a := range asSlice(p["AttributeDefinitions"]) {
			am := asMap(a)
			attrTypes[asString(am["AttributeName"])] = asString(am["AttributeType"])
		}
		tbl := Table{
			LogicalID:   r.LogicalID,
			TableName:   asString(p["TableName"]),
			BillingMode: asString(p["BillingMode"]),
			PITR:        asBool(asMap(p["PointInTimeRecoverySpecification"])["PointInTimeRecoveryEnabled"]),
			SSE:         asBool(asMap(p["SSESpecification"])["SSEEnabled"]),
			Properties:  p,
		}
		for _, k := range asSlice(p["KeySchema"]) {
			km := asMap(k)
			name := asString(km["AttributeName"])
			tbl.Keys = append(tbl.Keys, Key{Name: name, KeyType: asString(km["KeyType"]), AttributeType: attrTypes[name]})
		}
		if ttl := asMap(p["TimeToLiveSpecification"]); asBool(ttl["Enabled"]) {
			tbl.TTLEnabled = true
			tbl.TTLAttribute = asString(ttl["AttributeName"])
		}
		out = append(out, tbl)
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// Resolver turns template values into text for a local run: !Ref of a
// parameter gives its override or default, !Ref of a resource gives Names[id]
// (the local physical name, e.g. a table name), pseudo parameters come from
// Pseudo. !Sub, !Join and !GetAtt ...Arn (a local ARN) are supported.
type Resolver struct {
	Template *Template
	// Params overrides parameter defaults.
	Params map[string]string
	// Names maps a resource's logical id to what !Ref returns locally.
	Names map[string]string
	// Pseudo holds AWS::Region, AWS::AccountId, AWS::StackName, AWS::Partition
	// and AWS::URLSuffix; DefaultPseudo is used for missing ones.
	Pseudo map[string]string
}

// DefaultPseudo are the pseudo parameter values of a local run.
var DefaultPseudo = map[string]string{
	"AWS::Region":    "us-east-1",
	"AWS::AccountId": "000000000000",
	"AWS::StackName": "idemlambda",
	"AWS::Partition": "aws",
	"AWS::URLSuffix": "amazonaws.com",
}

// Resolve renders v as text.
func (r *Resolver) Resolve(v any) (string, error) {
	switch v := v.(type) {
	case Intrinsic:
		return r.intrinsic(v)
	case string, int, float64, bool, nil:
		return scalarText(v), nil
	}
	return "", fmt.Errorf("samtemplate: cannot resolve %T %v to text", v, v)
}

// Ref resolves !Ref name.
func (r *Resolver) Ref(name string) (string, error) {
	if v, ok := r.Params[name]; ok {
		return v, nil
	}
	if r.Template != nil {
		if p, ok := r.Template.Parameters[name]; ok {
			if !p.HasDefault {
				return "", fmt.Errorf("samtemplate: parameter %s has no default and no value", name)
			}
			return p.Default, nil
		}
	}
	if v, ok := r.Pseudo[name]; ok {
		return v, nil
	}
	if v, ok := DefaultPseudo[name]; ok {
		return v, nil
	}
	if v, ok := r.Names[name]; ok {
		return v, nil
	}
	return "", fmt.Errorf("samtemplate: !Ref %s: no parameter or local resource of that name", name)
}

func (r *Resolver) getAtt(resource, attr string) (string, error) {
	name, err := r.Ref(resource)
	if err != nil {
		return "", err
	}
	if attr != "Arn" {
		return "", fmt.Errorf("samtemplate: !GetAtt %s.%s: only Arn is supported locally", resource, attr)
	}
	partition, _ := r.Ref("AWS::Partition")
	region, _ := r.Ref("AWS::Region")
	account, _ := r.Ref("AWS::AccountId")
	service := "unknown"
	if r.Template != nil {
		switch r.Template.Resources[resource].Type {
		case TypeTable:
			return fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s", partition, region, account, name), nil
		case TypeQueue:
			service = "sqs"
		case TypeRole:
			return fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, name), nil
		case TypeLogGroup:
			// CloudFormation's Arn of a log group ends in ":*".
			return fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s:*", partition, region, account, name), nil
		}
	}
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", partition, service, region, account, name), nil
}

func (r *Resolver) intrinsic(in Intrinsic) (string, error) {
	switch in.Name {
	case "Ref":
		name, ok := in.Arg.(string)
		if !ok {
			return "", fmt.Errorf("samtemplate: !Ref of %T", in.Arg)
		}
		return r.Ref(name)
	case "Fn::GetAtt":
		parts := asStrings(in.Arg)
		if len(parts) != 2 {
			return "", fmt.Errorf("samtemplate: !GetAtt %v: want Resource.Attribute", in.Arg)
		}
		return r.getAtt(parts[0], parts[1])
	case "Fn::Join":
		args := asSlice(in.Arg)
		if len(args) != 2 {
			return "", fmt.Errorf("samtemplate: !Join wants [delimiter, [values]]")
		}
		var parts []string
		for _, e := range asSlice(args[1]) {
			s, err := r.Resolve(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, scalarText(args[0])), nil
	case "Fn::Sub":
		format, vars := "", map[string]any{}
		switch a := in.Arg.(type) {
		case string:
			format = a
		case []any:
			if len(a) != 2 {
				return "", fmt.Errorf("samtemplate: !Sub wants a string or [string, {vars}]")
			}
			format, vars = scalarText(a[0]), asMap(a[1])
		}
		return r.sub(format, vars)
	}
	return "", fmt.Errorf("samtemplate: %s is not supported locally", in.Name)
}

// sub expands ${Name}, ${Resource.Attr} and ${!Literal}.
func (r *Resolver) sub(format string, vars map[string]any) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(format, "${")
		if i < 0 {
			b.WriteString(format)
			return b.String(), nil
		}
		j := strings.Index(format[i:], "}")
		if j < 0 {
			return "", fmt.Errorf("samtemplate: !Sub %q: unclosed ${", format)
		}
		b.WriteString(format[:i])
		name := format[i+2 : i+j]
		format = format[i+j+1:]
		if strings.HasPrefix(name, "!") {
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		var s string
		var err error
		if v, ok := vars[name]; ok {
			s, err = r.Resolve(v)
		} else if res, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			s, err = r.getAtt(res, attr)
		} else {
			s, err = r.Ref(name)
		}
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
}

// HandlerPackage is the Go package a function is built from:
// ./handlers/<logical id without the "Function" suffix, lower-cased>, the
// convention the Makefile's build-<LogicalId> targets follow
// (PaymentsFunction → ./handlers/payments).
func (fn Function) HandlerPackage() string {
	return "./handlers/" + strings.ToLower(strings.TrimSuffix(fn.LogicalID, "Function"))
}
