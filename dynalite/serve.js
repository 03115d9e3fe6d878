// Starts dynalite's own command line (node_modules/dynalite/cli.js, same
// flags) in a process that survives a client that aborts a request.
//
// dynalite 4.0.0 rethrows every request stream error
// (`req.on('error', function (err) { throw err })` in index.js), so one
// client that resets its connection mid-request — a test cancelling a
// context, a fault proxy cutting a connection — kills the whole server and
// every test that shares it. Such an error concerns that one connection
// only: it is logged and the server goes on. Any other uncaught error still
// ends the process, as before.
'use strict'

const clientAborts = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'])

process.on('uncaughtException', (err) => {
  if (err && (clientAborts.has(err.code) || err.message === 'aborted')) {
    console.error(`dynalite: a client aborted a request (${err.code || err.message}); serving on`)
    return
  }
  console.error(err)
  process.exit(1)
})

require('./node_modules/dynalite/cli.js')
