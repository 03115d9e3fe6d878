package main

import (
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/tools/internal/samtemplate"
)

const capacityTemplate = `AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  PerEnv:
    Type: Number
    Default: 8
Resources:
  Managed:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CapacityProviderConfig:
        LambdaManagedInstancesCapacityProviderConfig:
          CapacityProviderArn: arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp
          PerExecutionEnvironmentMaxConcurrency: !Ref PerEnv
  Literal:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CapacityProviderConfig:
        LambdaManagedInstancesCapacityProviderConfig:
          CapacityProviderArn: arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp
          PerExecutionEnvironmentMaxConcurrency: 4
  Bad:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CapacityProviderConfig:
        LambdaManagedInstancesCapacityProviderConfig:
          PerExecutionEnvironmentMaxConcurrency: 0
  OnDemand:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
`

func TestFunctionConcurrency(t *testing.T) {
	tpl, err := samtemplate.Parse([]byte(capacityTemplate))
	if err != nil {
		t.Fatal(err)
	}
	r := localResolver(tpl, options{params: paramFlag{}})
	fns := map[string]samtemplate.Function{}
	for _, fn := range tpl.Functions() {
		fns[fn.LogicalID] = fn
	}
	tests := []struct {
		fn      string
		flag    int
		want    int
		wantErr string
	}{
		{fn: "Managed", flag: 1, want: 8},
		{fn: "Literal", flag: 2, want: 4},
		{fn: "OnDemand", flag: 1, want: 1},
		{fn: "OnDemand", flag: 3, want: 3},
		{fn: "Bad", flag: 1, wantErr: "not an integer from 1 to 1600"},
		{fn: "OnDemand", flag: 0, want: 1},
		{fn: "OnDemand", flag: -1, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			got, err := functionConcurrency(fns[tt.fn], r, tt.flag)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
