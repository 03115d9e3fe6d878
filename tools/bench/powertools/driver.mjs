// The Powertools for AWS Lambda (TypeScript) sides of `make bench`: the same
// handler as the Go sides, made idempotent with makeIdempotent and the
// DynamoDB persistence layer (powertools-ts) or, when BENCH_REDIS_URL is set,
// the cache persistence layer on the Node Redis client it documents,
// @redis/client (powertools-ts-redis). The Go harness (tools/bench) drives it
// over stdin/stdout, one JSON command per line; the invocation loop runs here,
// so no process boundary is timed.
//
//   {"op":"seed","table":T,"scenario":S,"keys":[...],"payloadFile":F}  -> {"ok":true}
//   {"op":"run","table":T,"scenario":"new"|"replay"|"batch-redelivery","workers":W,
//    "durationMs":D,"maxOps":M,"keyPrefix":P,"keys":[...],"payloadFile":F}
//                                -> {"latenciesMs":[...],"errors":N,"firstError":"...","calls":C}
//
// batch-redelivery (DynamoDB only) is one SQS batch of the keys, processed
// the way Powertools documents idempotent batch processing: a BatchProcessor
// and processPartialResponse, the record handler made idempotent with
// makeIdempotent keyed by the record's messageId (as sqsbatch.Wrap keys by
// default), the Lambda context registered on the IdempotencyConfig. The
// record handler returns nothing, as the Go side's record function stores no
// result. seed delivers the batch once (ApproximateReceiveCount 1); each run
// invocation delivers it again (2), and one invocation is one batch.
//
// calls counts the Redis commands the cache layer sent during the run (0 on
// DynamoDB, whose calls the Go harness counts at its proxy). Each is one
// awaited round trip of its invocation, as the go-redis hook counts the Go
// Redis sides; the client's connection handshake is not counted.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { CachePersistenceLayer } from '@aws-lambda-powertools/idempotency/cache';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';

// The cache layer's client: @redis/client, connected once, wrapped to count
// the commands the layer sends (its CacheClient interface is get, set, del).
let calls = 0;
let cacheClient;
if (process.env.BENCH_REDIS_URL) {
  const { createClient } = await import('@redis/client');
  const redis = await createClient({ url: process.env.BENCH_REDIS_URL }).connect();
  cacheClient = {
    get: (name) => { calls++; return redis.get(name); },
    set: (name, value, options) => { calls++; return redis.set(name, value, options); },
    del: (keys) => { calls++; return redis.del(keys); },
  };
}

const client = new DynamoDBClient({
  endpoint: process.env.BENCH_ENDPOINT,
  region: 'us-east-1',
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
});

// A Lambda context, so that Powertools sets the lease of in-progress records
// from the remaining time, as idemlambda does from the deadline.
const lambdaContext = {
  functionName: 'bench',
  awsRequestId: 'bench',
  getRemainingTimeInMillis: () => 30_000,
};

const handlers = new Map(); // table+payload -> idempotent function
function handlerFor(table, payloadFile) {
  const id = `${table} ${payloadFile}`;
  let h = handlers.get(id);
  if (!h) {
    const result = JSON.parse(readFileSync(payloadFile, 'utf8'));
    const persistenceStore = cacheClient
      ? new CachePersistenceLayer({ client: cacheClient })
      : new DynamoDBPersistenceLayer({ tableName: table, awsSdkV3Client: client });
    const config = new IdempotencyConfig({ eventKeyJmesPath: 'id', throwOnNoIdempotencyKey: true });
    h = makeIdempotent(async (event) => result, { persistenceStore, config });
    handlers.set(id, h);
  }
  return h;
}

// The batch side: per table, one persistence layer, one config and one
// idempotent record handler, as a module would hold them.
const batchHandlers = new Map(); // table -> { config, processRecord }
function batchHandlerFor(table) {
  let b = batchHandlers.get(table);
  if (!b) {
    const persistenceStore = new DynamoDBPersistenceLayer({ tableName: table, awsSdkV3Client: client });
    const config = new IdempotencyConfig({ eventKeyJmesPath: 'messageId', throwOnNoIdempotencyKey: true });
    const processRecord = makeIdempotent(async (_record) => {}, { persistenceStore, config });
    b = { config, processRecord };
    batchHandlers.set(table, b);
  }
  return b;
}

// sqsEvent is the SQS batch of keys delivered for the receive-th time, the
// same records as the Go side's sqsEvent (tools/bench/batch.go).
function sqsEvent(keys, receive) {
  return {
    Records: keys.map((k) => ({
      messageId: k,
      receiptHandle: `rh-${k}`,
      body: JSON.stringify({ id: k }),
      attributes: {
        ApproximateReceiveCount: String(receive),
        SentTimestamp: '1765100000000',
        SenderId: '123456789012',
        ApproximateFirstReceiveTimestamp: '1765100000000',
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:bench',
      awsRegion: 'us-east-1',
    })),
  };
}

// batchInvoker returns one Lambda invocation of the batch handler. Each
// worker gets its own BatchProcessor: the processor holds the batch it is
// processing, and Lambda runs one invocation per process at a time, so one
// processor per concurrent invocation is what a function has.
function batchInvoker(table) {
  const { config, processRecord } = batchHandlerFor(table);
  const processor = new BatchProcessor(EventType.SQS);
  return async (event, context) => {
    config.registerLambdaContext(context);
    const resp = await processPartialResponse(event, processRecord, processor, { context });
    if (resp.batchItemFailures.length > 0) {
      throw new Error(`${resp.batchItemFailures.length} records failed`);
    }
    return resp;
  };
}

async function runBatch(cmd) {
  const ev = sqsEvent(cmd.keys, 2);
  const latencies = [];
  let errors = 0;
  let firstError = '';
  let next = 0;
  const deadline = performance.now() + cmd.durationMs;
  async function worker() {
    const invoke = batchInvoker(cmd.table);
    for (;;) {
      const i = next++;
      if (i >= cmd.maxOps || (i >= cmd.minOps && performance.now() > deadline)) return;
      const t0 = performance.now();
      try {
        await invoke(ev, lambdaContext);
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        if (!firstError) firstError = String(err?.message ?? err).slice(0, 300);
      }
    }
  }
  await Promise.all(Array.from({ length: cmd.workers }, worker));
  return { latenciesMs: latencies, errors, firstError, calls: 0 };
}

async function run(cmd) {
  if (cmd.scenario === 'batch-redelivery') return runBatch(cmd);
  const h = handlerFor(cmd.table, cmd.payloadFile);
  const latencies = [];
  let errors = 0;
  let firstError = '';
  let next = 0;
  calls = 0;
  const deadline = performance.now() + cmd.durationMs;
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= cmd.maxOps || (i >= cmd.minOps && performance.now() > deadline)) return;
      const key = cmd.scenario === 'new' ? `${cmd.keyPrefix}-${i}` : cmd.keys[i % cmd.keys.length];
      const t0 = performance.now();
      try {
        await h({ id: key }, lambdaContext);
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        if (!firstError) firstError = String(err?.message ?? err).slice(0, 300);
      }
    }
  }
  await Promise.all(Array.from({ length: cmd.workers }, worker));
  return { latenciesMs: latencies, errors, firstError, calls };
}

async function seed(cmd) {
  if (cmd.scenario === 'batch-redelivery') {
    await batchInvoker(cmd.table)(sqsEvent(cmd.keys, 1), lambdaContext);
    return { ok: true };
  }
  const h = handlerFor(cmd.table, cmd.payloadFile);
  for (const key of cmd.keys) {
    await h({ id: key }, lambdaContext);
  }
  return { ok: true };
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  let out;
  try {
    out = cmd.op === 'seed' ? await seed(cmd) : await run(cmd);
  } catch (err) {
    out = { error: String(err?.message ?? err).slice(0, 300) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
// stdin ended: the harness is done. The Redis connection would keep Node
// running, so leave now (every answer has been written).
process.exit(0);
