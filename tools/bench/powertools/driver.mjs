// The Powertools for AWS Lambda (TypeScript) sides of `make bench`: the same
// handler as the Go sides, made idempotent with makeIdempotent and the
// DynamoDB persistence layer (powertools-ts) or, when BENCH_REDIS_URL is set,
// the cache persistence layer on the Node Redis client it documents,
// @redis/client (powertools-ts-redis). The Go harness (tools/bench) drives it
// over stdin/stdout, one JSON command per line; the invocation loop runs here,
// so no process boundary is timed.
//
//   {"op":"seed","table":T,"keys":[...],"payloadFile":F}        -> {"ok":true}
//   {"op":"run","table":T,"scenario":"new"|"replay","workers":W,
//    "durationMs":D,"maxOps":M,"keyPrefix":P,"keys":[...],"payloadFile":F}
//                                -> {"latenciesMs":[...],"errors":N,"firstError":"...","calls":C}
//
// calls counts the Redis commands the cache layer sent during the run (0 on
// DynamoDB, whose calls the Go harness counts at its proxy). Each is one
// awaited round trip of its invocation, as the go-redis hook counts the Go
// Redis sides; the client's connection handshake is not counted.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
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

async function run(cmd) {
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
