// Baseline: a bare Node.js `ws` broadcast server speaking the seed's wire protocol
// (initial snapshot of the latest 300 events, then {"type":"event","data":ev} per event).
// Control on stdin/stdout, like the other bench servers:
//   prints "PORT <n>" once listening on 127.0.0.1 (port 0 = any free port);
//   "GO <count> <rate> <chunk>" produces <count> events at <rate> ev/s (0 = as fast as possible,
//   yielding to I/O every <chunk> events), then prints "DONE <count> <seconds>";
//   "STATS" prints "STATS {json}"; "STATS gc" first runs a full V8 collection (needs
//   `node --expose-gc`, as _harness.server_cmd starts it) so uncollected garbage is not counted
//   in `rss`, like the Python servers' gc.collect(), and adds "gc": true; "QUIT" (or stdin EOF)
//   exits.
'use strict';
const http = require('http');
const readline = require('readline');
const { WebSocketServer } = require('ws');
const { makeClock, makeEvent } = require('./common');

const now = makeClock();
const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
// Deflate is accepted when the client offers it; threshold 0 so every message is compressed,
// the same work as the Python servers (ws' default skips messages under 1 KiB).
const wss = new WebSocketServer({
  server,
  path: '/stream',
  perMessageDeflate: { threshold: 0 },
  maxPayload: 16 << 20,
});
const recent = [];
let nextId = 1;
let sent = 0;

wss.on('connection', (ws) => {
  ws.send('{"type":"initial","data":[' + recent.join(',') + ']}');
  ws.on('error', () => {});
});

function emit(i) {
  const ev = makeEvent(i, now());
  ev.id = nextId++;
  ev.server_received = now();
  const enc = JSON.stringify(ev);
  recent.push(enc);
  if (recent.length > 300) recent.shift();
  const msg = '{"type":"event","data":' + enc + '}';
  for (const client of wss.clients) {
    if (client.readyState === 1) {
      client.send(msg);
      sent++;
    }
  }
}

function produce(count, rate, chunk, done) {
  const t0 = now();
  let i = 0;
  function step() {
    let due = count;
    if (rate > 0) due = Math.min(count, Math.floor(((now() - t0) / 1000) * rate) + 1);
    let n = 0;
    while (i < due && n < chunk) {
      emit(i++);
      n++;
    }
    if (i >= count) return done((now() - t0) / 1000);
    if (rate > 0 && i >= due) setTimeout(step, 1);
    else setImmediate(step);
  }
  step();
}

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  process.stdout.write('PORT ' + server.address().port + '\n');
});

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const parts = line.trim().split(/\s+/);
  if (parts[0] === 'GO') {
    const [count, rate, chunk] = parts.slice(1).map(Number);
    produce(count, rate, chunk || 100, (secs) => {
      process.stdout.write('DONE ' + count + ' ' + secs.toFixed(4) + '\n');
    });
  } else if (parts[0] === 'STATS') {
    const collect = parts[1] === 'gc' && typeof global.gc === 'function';
    if (collect) global.gc();
    const stats = { connections: wss.clients.size, sent, rss: process.memoryUsage().rss };
    if (collect) stats.gc = true;
    process.stdout.write('STATS ' + JSON.stringify(stats) + '\n');
  } else if (parts[0] === 'QUIT') {
    process.exit(0);
  }
});
rl.on('close', () => process.exit(0));
