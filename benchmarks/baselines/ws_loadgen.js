// Load generator: C Node `ws` clients in one process, used against every server so that client
// cost is equal.  Usage: node ws_loadgen.js '<json>' with keys
//   url, clients, expect (live events per client), timeout_s, deflate (bool), max_samples,
//   lean (bool: count and time events by scanning the raw message instead of JSON.parse).
// Prints "READY" once every client is open and has its initial snapshot, then one line
// "RESULT {json}" when every client has `expect` live events (or closed, or timeout):
//   {clients: [[count, first_ms, last_ms, close_code], ...], lat: {p50, p90, p99, p99_9, max, n},
//    connect_errors, deflate_negotiated (clients), timed_out}
// Latency = receive time - the producer's `timestamp` (same machine clock, sub-ms calibrated).
'use strict';
const WebSocket = require('ws');
const { makeClock } = require('./common');

const cfg = JSON.parse(process.argv[2]);
const now = makeClock();
const C = cfg.clients;
const expect = cfg.expect;
const lean = !!cfg.lean;
const cap = Math.max(1, Math.min(cfg.max_samples || 2000000, C * expect));
const samples = new Float64Array(cap);
let nSamples = 0;
let ready = 0;
let finished = 0;
let connectErrors = 0;
let reported = false;
let deflateNegotiated = 0;
const stats = [];

function sample(ev, t) {
  if (nSamples < cap && typeof ev.timestamp === 'number') samples[nSamples++] = t - ev.timestamp;
}

function pct(sorted, q) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx];
}

function report(timedOut) {
  if (reported) return;
  reported = true;
  const s = samples.subarray(0, nSamples).sort();
  const lat = {
    p50: pct(s, 0.5), p90: pct(s, 0.9), p99: pct(s, 0.99), p99_9: pct(s, 0.999),
    max: nSamples ? s[nSamples - 1] : null, n: nSamples,
  };
  const clients = stats.map((st) => [st.count, st.first, st.last, st.code]);
  process.stdout.write('RESULT ' + JSON.stringify({ clients, lat, connect_errors: connectErrors,
    deflate_negotiated: deflateNegotiated, timed_out: timedOut }) + '\n');
  for (const st of stats) try { st.ws.terminate(); } catch (e) {}
  setTimeout(() => process.exit(0), 50);
}

function onReady(st) {
  st.ready = true;
  ready++;
  if (ready === C) process.stdout.write('READY\n');
}

// Lean mode (cfg.lean): no JSON.parse.  The message kind comes from its prefix (every server
// here writes "type" first) and each event is found by its one "timestamp": field, scanned on
// the raw Buffer, so the load generator costs little and the server is what gets measured.
const TS = Buffer.from('"timestamp":');
const P_EVENT = Buffer.from('{"type":"event"');
const P_BATCH = Buffer.from('{"type":"batch"');
const P_INITIAL = Buffer.from('{"type":"initial"');

function startsWith(buf, prefix) {
  return buf.length >= prefix.length && buf.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

function onLean(st, data, t, finish) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  if (startsWith(buf, P_EVENT) || startsWith(buf, P_BATCH)) {
    if (st.count === 0) st.first = t;
    let i = buf.indexOf(TS);
    while (i >= 0) {
      const v = parseFloat(buf.toString('latin1', i + TS.length, i + TS.length + 24));
      if (nSamples < cap) samples[nSamples++] = t - v;
      st.count++;
      i = buf.indexOf(TS, i + TS.length);
    }
    st.last = t;
  } else if (startsWith(buf, P_INITIAL) && !st.ready) {
    onReady(st);
  }
  if (st.count >= expect) finish();
}

function maybeDone() {
  if (finished >= C) report(false);
}

function open(i) {
  const st = { count: 0, first: 0, last: 0, code: 0, ready: false, done: false, ws: null };
  stats[i] = st;
  const ws = new WebSocket(cfg.url, { perMessageDeflate: !!cfg.deflate, maxPayload: 64 << 20 });
  st.ws = ws;
  ws.on('open', () => {
    if (ws.extensions && ws.extensions.indexOf('permessage-deflate') >= 0) deflateNegotiated++;
  });
  const finish = () => {
    if (!st.done) { st.done = true; finished++; maybeDone(); }
  };
  ws.on('message', (data, isBinary) => {
    const t = now();
    if (lean) return onLean(st, data, t, finish);
    const msg = JSON.parse(data);
    const kind = msg.type;
    if (kind === 'event') {
      if (st.count === 0) st.first = t;
      st.count++;
      st.last = t;
      sample(msg.data, t);
    } else if (kind === 'batch') {
      if (st.count === 0) st.first = t;
      const evs = msg.data;
      st.count += evs.length;
      st.last = t;
      for (let k = 0; k < evs.length; k++) sample(evs[k], t);
    } else if (kind === 'initial' && !st.ready) {
      onReady(st);
    }
    if (st.count >= expect) finish();
  });
  ws.on('close', (code) => { st.code = code; finish(); });
  ws.on('error', () => { connectErrors++; });
}

for (let i = 0; i < C; i++) open(i);
setTimeout(() => report(true), cfg.timeout_s * 1000);
