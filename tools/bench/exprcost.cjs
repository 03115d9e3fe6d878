// exprcost.cjs measures the CPU dynalite spends reading one request before
// it touches its data: JSON parsing, validation and the parsing of the
// condition and update expressions (validations/index.js
// validateExpressions, which runs the server's PEG parsers). BenchmarkServerParse
// runs it on the requests of the floor and of idemlambda:
//
//   node tools/bench/exprcost.cjs requests.json
//
// requests.json maps a name to a request body; it prints a JSON object from
// each name to the median nanoseconds of CPU per request.
'use strict'
const path = require('path')
const fs = require('fs')
const v = require(path.join(__dirname, '..', '..', 'dynalite', 'node_modules', 'dynalite', 'validations', 'index.js'))

const perRound = 2000
const rounds = 9
const bodies = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const names = Object.keys(bodies)
const run = (body, n) => {
  for (let i = 0; i < n; i++) {
    const err = v.validateExpressions(JSON.parse(body))
    if (err) throw new Error(err)
  }
}
for (const n of names) run(bodies[n], 500) // warm the JIT up
const samples = Object.fromEntries(names.map(n => [n, []]))
for (let r = 0; r < rounds; r++) {
  for (const n of names) { // interleaved, so load changes hit every request alike
    const t0 = process.cpuUsage()
    run(bodies[n], perRound)
    const t = process.cpuUsage(t0)
    samples[n].push((t.user + t.system) * 1000 / perRound)
  }
}
const out = {}
for (const n of names) out[n] = Math.round(samples[n].sort((a, b) => a - b)[rounds >> 1])
console.log(JSON.stringify(out))
