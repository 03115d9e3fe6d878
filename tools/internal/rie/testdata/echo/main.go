// Command echo is a tiny Lambda function used by the rie tests. It is a
// real aws-lambda-go handler, built by the tests with `go build`.
//
// At init, ECHO_INIT selects a failure: "error" posts to /runtime/init/error
// as a custom runtime would and exits, "crash" exits without a word.
// Each event is {"action": ..., "message": ...}:
//
//	echo     returns the event plus what the function sees (request id, deadline, env)
//	error    returns an error of type *echoError
//	hang     blocks forever (the emulator must time it out)
//	exit     exits the process in the middle of the invocation
//	meet     waits until as many invocations as the message says (a
//	         number) are inside the handler at once, then returns like echo
//	         with the times, measured here, at which it started and ended
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Action  string `json:"action"`
	Message string `json:"message"`
}

type reply struct {
	Message     string            `json:"message"`
	RequestID   string            `json:"requestId"`
	FunctionARN string            `json:"functionArn"`
	DeadlineMs  int64             `json:"deadlineMs"`
	HasDeadline bool              `json:"hasDeadline"`
	PID         int               `json:"pid"`
	Env         map[string]string `json:"env"`
	Invocations int               `json:"invocations"`
	StartedNs   int64             `json:"startedNs,omitempty"`
	EndedNs     int64             `json:"endedNs,omitempty"`
}

type echoError struct{ msg string }

func (e *echoError) Error() string { return e.msg }

var invocations atomic.Int64

// inside counts the meet invocations in the handler; arrived is signalled
// on every change.
var (
	meetMu  sync.Mutex
	inside  int
	arrived = sync.NewCond(&meetMu)
)

// meet waits until n meet invocations are in the handler at once (or ctx
// ends: the emulator times the invocation out).
func meet(ctx context.Context, n int) {
	stop := context.AfterFunc(ctx, func() { meetMu.Lock(); arrived.Broadcast(); meetMu.Unlock() })
	defer stop()
	meetMu.Lock()
	defer meetMu.Unlock()
	inside++
	arrived.Broadcast()
	for inside < n && ctx.Err() == nil {
		arrived.Wait()
	}
}

func handle(ctx context.Context, ev event) (reply, error) {
	n := invocations.Add(1)
	var started, ended int64
	switch ev.Action {
	case "error":
		return reply{}, &echoError{msg: "echo failed: " + ev.Message}
	case "hang":
		select {}
	case "exit":
		os.Exit(3)
	case "meet":
		want, err := strconv.Atoi(ev.Message)
		if err != nil {
			return reply{}, &echoError{msg: "meet: " + err.Error()}
		}
		started = time.Now().UnixNano()
		meet(ctx, want)
		ended = time.Now().UnixNano()
	}
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, ok := ctx.Deadline()
	env := map[string]string{}
	for _, k := range []string{
		"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
		"_HANDLER", "AWS_REGION", "AWS_DEFAULT_REGION", "LAMBDA_TASK_ROOT", "CUSTOM", "_X_AMZN_TRACE_ID",
		"AWS_LAMBDA_FUNCTION_TIMEOUT", "IDEM_TEST_LEAK", "AWS_LAMBDA_MAX_CONCURRENCY",
	} {
		env[k] = os.Getenv(k)
	}
	return reply{
		Message:     ev.Message,
		RequestID:   lc.AwsRequestID,
		FunctionARN: lc.InvokedFunctionArn,
		DeadlineMs:  deadline.UnixMilli(),
		HasDeadline: ok,
		PID:         os.Getpid(),
		Env:         env,
		Invocations: int(n),
		StartedNs:   started,
		EndedNs:     ended,
	}, nil
}

func main() {
	switch os.Getenv("ECHO_INIT") {
	case "error":
		body, _ := json.Marshal(map[string]string{"errorType": "Config.Missing", "errorMessage": "TABLE is not set"})
		url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	case "crash":
		fmt.Fprintln(os.Stderr, "echo: crashing at init")
		os.Exit(2)
	}
	lambda.Start(handle)
}
