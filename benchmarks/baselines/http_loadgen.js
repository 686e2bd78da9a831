// Ingest load generator.  Usage: node http_loadgen.js '<json>' with keys
//   base (http://127.0.0.1:PORT), mode ("keepalive" | "close" | "wspublish"),
//   concurrency, duration_s (HTTP modes), count (wspublish: events to send).
// HTTP modes: `concurrency` loops POST one ~220-byte event to /events for duration_s and print
//   RESULT {ok, errors, seconds}.  "close" sends `Connection: close` (a new TCP connection per
//   request, like the seed's hook scripts).
// wspublish: one WebSocket to /stream sends `count` {"type":"publish","data":ev} messages as fast
//   as the socket drains (bufferedAmount < 1 MiB), then prints RESULT {sent, seconds}; the
//   orchestrator waits for the server's events_in to reach the count.  The socket is also a
//   subscriber: wsnotebook broadcasts every ingested event back to it, so it asks for
//   `batch=auto` (as wsnotebook's own client does; a server that ignores it sends per event).
//   Sending up to 1 MiB per event-loop turn, the sender read its echo too rarely, fell 4096
//   messages behind its own stream and wsnotebook dropped it as a slow client (close 1013) in
//   some runs; it now sends at most 200 messages per turn.  A close before everything was sent exits with code 1
//   so the orchestrator fails at once instead of waiting for events that never come.
'use strict';
const http = require('http');
const { makeClock, makeEvent } = require('./common');

const cfg = JSON.parse(process.argv[2]);
const now = makeClock();

function httpMode() {
  const keepAlive = cfg.mode === 'keepalive';
  const agent = new http.Agent({ keepAlive, maxSockets: cfg.concurrency });
  const url = new URL('/events', cfg.base);
  let ok = 0;
  let errors = 0;
  let i = 0;
  const t0 = now();
  const end = t0 + cfg.duration_s * 1000;
  let active = cfg.concurrency;
  function one() {
    if (now() >= end) {
      if (--active === 0) {
        const secs = (now() - t0) / 1000;
        process.stdout.write('RESULT ' + JSON.stringify({ ok, errors, seconds: secs }) + '\n');
        process.exit(0);
      }
      return;
    }
    const body = JSON.stringify(makeEvent(i++, now()));
    const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    if (!keepAlive) headers.Connection = 'close';
    const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        if (res.statusCode === 200) ok++; else errors++;
        one();
      });
    });
    req.on('error', () => { errors++; setImmediate(one); });
    req.end(body);
  }
  for (let k = 0; k < cfg.concurrency; k++) one();
}

function wsMode() {
  const WebSocket = require('ws');
  const ws = new WebSocket(cfg.base.replace(/^http/, 'ws') + '/stream?ext=1&batch=auto', {
    perMessageDeflate: false,
  });
  let done = false;
  ws.on('open', () => {
    const t0 = now();
    let i = 0;
    function pump() {
      // At most 200 sends per turn so that the echo is read between turns (see above).
      const stop = Math.min(cfg.count, i + 200);
      while (i < stop && ws.bufferedAmount < (1 << 20)) {
        ws.send('{"type":"publish","data":' + JSON.stringify(makeEvent(i, now())) + '}');
        i++;
      }
      if (i < cfg.count) return setImmediate(pump);
      done = true;
      process.stdout.write('RESULT ' + JSON.stringify({ sent: i, seconds: (now() - t0) / 1000 }) + '\n');
    }
    process.stdout.write('OPEN\n');
    pump();
  });
  ws.on('message', () => {});
  ws.on('close', (code, reason) => {
    if (done) return;
    process.stderr.write(`closed by the server (${code} ${reason}) before all events were sent\n`);
    process.exit(1);
  });
  ws.on('error', (e) => { process.stderr.write(String(e) + '\n'); process.exit(1); });
  // Any line on stdin (the orchestrator's QUIT) or EOF ends the process.
  process.stdin.on('data', () => process.exit(0));
  process.stdin.on('end', () => process.exit(0));
}

if (cfg.mode === 'wspublish') wsMode(); else httpMode();
