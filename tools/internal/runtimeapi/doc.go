// Package runtimeapi runs a real Lambda function binary on this machine the way
// the Lambda service does: it serves the Lambda Runtime API
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) on
// 127.0.0.1, starts the binary with AWS_LAMBDA_RUNTIME_API pointing at it and
// the environment Lambda sets, and hands it one event at a time.
//
// The guarantee: each process handles at most one invocation at a time, like a
// Lambda execution environment. A Function has Config.Instances processes;
// Invoke waits for a free one, so concurrent callers queue. An invocation that
// runs past Config.Timeout kills its process (Invoke returns an error matching
// ErrTimeout) and the next invocation on that instance starts a fresh process,
// as a cold start. A process that exits mid-invocation yields ErrExited; one
// that fails before asking for its first event yields an *InitError.
//
// It is a development and test tool, not a sandbox: the function runs as the
// current user with the environment given in Config and nothing else.
//
//	fn, err := runtimeapi.Start(ctx, runtimeapi.Config{Binary: "bin/bootstrap", Name: "PaymentsFunction"})
//	if err != nil { ... }
//	defer fn.Close()
//	res, err := fn.Invoke(ctx, []byte(`{"hello":"world"}`))
//	// err: the platform failed (timeout, crash, init); res.Err: the handler returned an error.
package runtimeapi
