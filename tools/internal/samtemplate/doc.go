// Package samtemplate reads the AWS SAM template (template.yaml) and the SAM
// CLI configuration (samconfig.toml) of this repository, for the local runner
// (cmd/idemlocal) and for tests that check the deployment's invariants.
//
// YAML is decoded with gopkg.in/yaml.v3 nodes, so CloudFormation's short tags
// (!Ref, !GetAtt, !Sub, !Join, ...) and their long forms ({"Ref": ...},
// {"Fn::GetAtt": ...}) both become an Intrinsic value. SAM's Globals section is
// merged into each function as SAM does (maps merged, lists appended, scalars
// overridden by the function).
//
// It reads what this project's template uses; it is not a CloudFormation
// implementation. (AWS's goformation rejects this valid template, so the model
// stays small and our own.) samconfig.toml is decoded by
// github.com/pelletier/go-toml/v2.
//
//	t, err := samtemplate.ParseFile("template.yaml")
//	for _, fn := range t.Functions() {
//		fmt.Println(fn.LogicalID, fn.Runtime, fn.Architectures)
//	}
package samtemplate
