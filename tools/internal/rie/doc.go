// Package rie runs a Lambda function binary on this machine under AWS's
// official Lambda Runtime Interface Emulator (aws-lambda-rie, from
// github.com/aws/aws-lambda-runtime-interface-emulator), the emulator SAM CLI
// runs inside its containers, without a container.
//
// A Function is Config.Instances execution environments. Each one is an
// aws-lambda-rie process on its own two loopback ports (the Runtime API the
// bootstrap talks to, and the emulator's invoke endpoint), started as
//
//	aws-lambda-rie --runtime-api-address 127.0.0.1:P1 \
//	    --runtime-interface-emulator-address 127.0.0.1:P2 --log-level warn <bootstrap>
//
// with an environment built from Config only (the emulator hands its whole
// environment to the function, so nothing of the caller's leaks in: no
// credentials, no AWS_PROFILE). The emulator starts the bootstrap at the first
// invocation (an on-demand cold start) and serves one invocation at a time: a
// second concurrent request makes it panic, so Invoke queues callers for a free
// environment, as Lambda does with its execution environments.
//
// What the emulator reports, and how Invoke maps it:
//
//   - a response: HTTP 200 with the payload (Result.Payload);
//   - a handler error: HTTP 200 with {"errorMessage", "errorType"[, "stackTrace"]}
//     and no X-Amz-Function-Error header, so Invoke, like SAM CLI, reads a body of
//     exactly that shape as a function error (Result.Err);
//   - a timeout (AWS_LAMBDA_FUNCTION_TIMEOUT): HTTP 200 with the text "Task timed
//     out after N.00 seconds"; the emulator kills the runtime with SIGKILL and the
//     next invocation starts it again (a cold start). Invoke returns ErrTimeout;
//   - the bootstrap exits mid-invocation: HTTP 502 with errorType
//     "Runtime.ExitError"; the next invocation starts a fresh runtime. Invoke
//     returns ErrExited (with the *FunctionError);
//   - the bootstrap fails its init (exits, or posts /runtime/init/error): HTTP
//     502, with the posted error as body if any. Invoke returns an *InitError;
//     every later invocation tries the init again.
//
// If an emulator process itself dies, the next Invoke on that environment
// starts a new one.
//
// Config.MaxConcurrency above 1 runs Lambda Managed Instances environments:
// the emulator's managed-instances mode (AWS_LAMBDA_MAX_CONCURRENCY set),
// one bootstrap process per environment serving up to MaxConcurrency
// invocations at once. That mode starts the bootstrap with the emulator,
// runs only /var/task/bootstrap as user 993 (so each emulator gets a private
// mount namespace in which /var/task is the bootstrap's directory: Linux and
// root only), refuses an invocation when no runtime loop waits in /next
// (Invoke retries it until the timeout), answers a timeout without stopping
// the runtime (ErrTimeout; the handler goes on) and goes down with a runtime
// that exits (ErrExited; the next Invoke starts a new emulator).
//
// It is a development and test tool, not a sandbox: the function runs as the
// current user. Memory size is passed on (AWS_LAMBDA_FUNCTION_MEMORY_SIZE) but
// not enforced, as with the emulator in a container without limits.
package rie
