// Shared helpers for the Node baselines: a sub-millisecond epoch clock and the event shape.
'use strict';

// Date.now() has 1 ms resolution; performance.now() is monotonic with sub-ms resolution.
// Calibrate: spin until Date.now() ticks and pin the offset at that edge.  Being descheduled
// between the two reads can only make the offset too small, so take the largest of 20 edges.
function makeClock() {
  const { performance } = require('perf_hooks');
  let best = -Infinity;
  for (let k = 0; k < 20; k++) {
    const d0 = Date.now();
    let d1 = d0;
    while (d1 === d0) d1 = Date.now();
    const offset = d1 - performance.now();
    if (offset > best) best = offset;
  }
  return () => best + performance.now();
}

const PAD = 'x'.repeat(64);

// The same event the Python producers send (benchmarks/_harness.py make_event): ~220 bytes
// of JSON as produced, ~270 once the server adds id and server_received.
function makeEvent(i, nowMs) {
  return {
    source_app: 'bench',
    session_id: 'session-' + (i % 8),
    hook_event_type: 'PreToolUse',
    payload: { tool_name: 'Bash', seq: i, pad: PAD },
    timestamp: nowMs,
  };
}

module.exports = { makeClock, makeEvent };
