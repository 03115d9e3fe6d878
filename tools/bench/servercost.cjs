// servercost.cjs counts the instructions dynalite spends on each new-key
// invocation, end to end inside the server (JSON, validation, expression
// parsing, the condition, the in-memory store, the response) but for the
// socket: the requests go straight to its HTTP handler. Run it under
// callgrind, which it drives itself (BenchmarkServerInstructions does):
//
//   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=DIR/cg.%p.out \
//     node --expose-gc --single-threaded --min-semi-space-size=256 --max-semi-space-size=256 \
//     --initial-old-space-size=2048 --no-flush-bytecode servercost.cjs requests.json DIR warm per rounds side...
//
// requests.json maps a side to its [operation, body] requests, two per
// invocation; each side has its own table with key "id". After warm
// invocations of every side (the JIT settles), each round runs per
// invocations of each side in turn between a zeroing and a dump of the
// counters; a minor GC before each segment and a young generation larger
// than a segment keep the collector out of the counts, so they repeat to
// ~0.2 % once the JIT has settled (a few thousand invocations: fewer, and
// the rounds differ by tens of percent; -spread reports it). Prints
// {side: median instructions per invocation, side-spread: (max - min) / median}.
'use strict'
const fs = require('fs')
const path = require('path')
const { execSync } = require('child_process')
const EventEmitter = require('events')
const dynalite = require(path.join(__dirname, '..', '..', 'dynalite', 'node_modules', 'dynalite'))

const [file, dir, warmS, perS, roundsS, ...sides] = process.argv.slice(2)
const warm = +warmS, per = +perS, rounds = +roundsS
const reqs = JSON.parse(fs.readFileSync(file, 'utf8'))
const handler = dynalite({ createTableMs: 0 }).listeners('request')[0]
const headers = (op) => ({
  'content-type': 'application/x-amz-json-1.0',
  'x-amz-target': 'DynamoDB_20120810.' + op,
  'x-amz-date': '20261207T000000Z',
  authorization: 'AWS4-HMAC-SHA256 Credential=bench/20261207/us-east-1/dynamodb/aws4_request, ' +
    'SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00',
})
const send = (op, body) => new Promise((resolve, reject) => {
  const req = new EventEmitter()
  req.headers = headers(op); req.method = 'POST'; req.url = '/'
  const res = {
    statusCode: 200,
    setHeader () {},
    end (b) { this.statusCode === 200 ? resolve() : reject(new Error(`${op}: ${this.statusCode} ${b}`)) },
  }
  handler(req, res)
  req.emit('data', Buffer.from(body))
  req.emit('end')
})
// seg dumps the counters (which zeroes them) and returns the dump's total.
const seg = () => {
  execSync(`callgrind_control -d ${process.pid}`, { stdio: 'ignore' })
  const f = fs.readdirSync(dir).map(x => path.join(dir, x)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]
  const total = +fs.readFileSync(f, 'utf8').match(/^totals: (\d+)/m)[1]
  fs.unlinkSync(f)
  return total
}
async function main () {
  const pos = Object.fromEntries(sides.map(s => [s, 0]))
  const run = async (s, n) => {
    for (let i = 0; i < 2 * n; i++) {
      const r = reqs[s][pos[s]++]
      if (!r) throw new Error(`${s}: too few requests`)
      await send(r[0], r[1])
    }
  }
  for (const s of sides) {
    const table = JSON.parse(reqs[s][0][1]).TableName
    await send('CreateTable', JSON.stringify({ TableName: table, BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] }))
  }
  await new Promise(resolve => setTimeout(resolve, 20))
  for (let i = 0; i < warm; i++) for (const s of sides) await run(s, 1)
  execSync(`callgrind_control -i on ${process.pid}`, { stdio: 'ignore' })
  seg()
  const empty = [], tot = Object.fromEntries(sides.map(s => [s, []]))
  for (let r = 0; r < rounds; r++) {
    global.gc({ type: 'minor' }); seg(); empty.push(seg()) // what a segment costs with no request
    for (const s of sides) {
      global.gc({ type: 'minor' }); seg()
      await run(s, per)
      tot[s].push(seg())
    }
  }
  const median = v => [...v].sort((a, b) => a - b)[v.length >> 1]
  const e = median(empty)
  const out = {}
  for (const s of sides) {
    const v = tot[s].map(x => (x - e) / per)
    out[s] = Math.round(median(v))
    out[s + '-spread'] = (Math.max(...v) - Math.min(...v)) / median(v) // of the rounds, relative to the median
  }
  console.log(JSON.stringify(out))
}
main().catch(err => { console.error(err); process.exit(1) })
