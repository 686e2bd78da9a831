// wsnotebook monitor: the browser side of wsnotebook.monitor() (anywidget ES module).
// The kernel sends only the rows added since its last tick, as binary column buffers
// (custom messages: {kind, n, first, buffers: [names], dicts}); this module keeps a bounded
// window of them (a ring indexed by the frame-wide row index) and renders everything:
// a virtualized table (sort, columns, resize, follow newest), pickers, a canvas throughput
// chart with a time brush, swim lanes, the detail pane and the question panel.
// No dependency, nothing loaded from the network.

const ROW_H = 22;
const COLS = [
  { key: "id", label: "id", width: 80, num: true },
  { key: "time", label: "time", width: 100 },
  { key: "app", label: "app", width: 120 },
  { key: "session", label: "session", width: 110 },
  { key: "type", label: "type", width: 130 },
  { key: "lat", label: "latency ms", width: 92, num: true },
  { key: "text", label: "summary / payload", width: 560, mono: true },
];
const PALETTE = ["#3b6ea5", "#d9730d", "#c43d3d", "#3a8f8a", "#3f8f3a", "#a8870f", "#8a5a9e",
  "#c2527a", "#7a5a44", "#5f6b78"];
const TYPE_COLORS = { PreToolUse: "#3b6ea5", PostToolUse: "#3f8f3a", UserPromptSubmit: "#8a5a9e",
  Notification: "#d9730d", Stop: "#c43d3d", SubagentStop: "#a33d6b", SessionStart: "#3a8f8a",
  SessionEnd: "#5f6b78", PreCompact: "#7a5a44" };
const WINDOWS = { "1m": 60, "5m": 300, "15m": 900, all: 0 };
const dec = new TextDecoder("utf-8");

function colorOf(name) {
  if (TYPE_COLORS[name]) return TYPE_COLORS[name];
  let h = 0;
  for (let i = 0; i < (name || "").length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length];
}
export function si(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
  if (a >= 1e6) return +(v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e3) return +(v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
  return String(+v.toFixed(a < 10 && a % 1 ? 1 : 0));
}
function niceTop(v) {
  if (!(v > 1)) return 1;
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}
function pad(n, w = 2) { return String(n).padStart(w, "0"); }
function clock(ms, withMs) {
  if (!isFinite(ms)) return "";
  const d = new Date(ms);
  const s = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMs ? `${s}.${pad(d.getMilliseconds(), 3)}` : s;
}
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
// A batch's "text" buffer (packing.row_text): one UTF-8 entry per row k, text_len[k] bytes at
// text_pos[k] (bytes between entries belong to no row). An entry is 0x01 + the row's summary,
// else the raw head of its payload JSON (at most 648 bytes), stripped of the keys every hook
// repeats and cut to HEAD_CHARS here, when the row is shown (packing.row_heads is the same in
// Python; BOILERPLATE is its regex anchored at the row's start: nothing follows the repeated
// group, so greedy repeats match Python's possessive ones).
export const HEAD_CHARS = 200;
const BOILERPLATE = /^\{(?:"(?:session_id|transcript_path|cwd|hook_event_name|permission_mode)":(?:"[^"\\\n]*(?:\\.[^"\\\n]*)*"|[^,}\n]*),?)+/;
export function rowHead(raw) {
  const m = BOILERPLATE.exec(raw);
  const s = m ? "{" + raw.slice(m[0].length) : raw;
  if (s.length <= HEAD_CHARS) return s;
  const c = s.charCodeAt(HEAD_CHARS - 1); // never keep half of a surrogate pair
  return s.slice(0, c >= 0xd800 && c < 0xdc00 ? HEAD_CHARS - 1 : HEAD_CHARS);
}
// ``text`` with the ``spans`` ([start, end] character offsets, sorted, from the kernel's
// search: actions.py ``_hits``) wrapped in <mark class="wsn-hit">
export function marked(text, spans) {
  const f = document.createDocumentFragment();
  let at = 0;
  for (const [a, b] of spans || []) {
    if (a < at || b <= a || b > text.length) continue;
    if (a > at) f.appendChild(document.createTextNode(text.slice(at, a)));
    f.appendChild(h("mark", "wsn-hit", text.slice(a, b)));
    at = b;
  }
  if (at < text.length) f.appendChild(document.createTextNode(text.slice(at)));
  return f;
}
// The by-type chart's stacked bands: ``totals`` ([[second, total]...]) and ``series``
// ([[key, [[second, n]...]]...], drawn in that order, bottom first) as [[key, lower, upper]...],
// the values at each second of ``totals``. Stacked, not overlaid: types with equal counts
// (every PreToolUse has its PostToolUse) drew one line over the other.
export function stacked(totals, series) {
  const base = totals.map(() => 0), out = [];
  for (const [key, pts] of series) {
    const m = new Map(pts), lower = base.slice();
    totals.forEach(([s], k) => { base[k] += m.get(s) || 0; });
    out.push([key, lower, base.slice()]);
  }
  return out;
}
function bytesOf(b) {
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
function typed(T, b) {
  const u = bytesOf(b);
  return new T(u.slice().buffer, 0, u.byteLength / T.BYTES_PER_ELEMENT);
}

// ------------------------------------------------------------------ the row store (per model)
class Store {
  constructor(cap) { this.cap = cap; this.listeners = new Set(); this.reset(0); }
  reset(first) {
    const c = this.cap;
    this.id = new Float64Array(c); this.ts = new Float64Array(c); this.lat = new Float32Array(c);
    this.app = new Int32Array(c); this.session = new Int32Array(c); this.type = new Int32Array(c);
    this.tbuf = new Array(c); this.toff = new Uint32Array(c); this.tlen = new Uint32Array(c);
    this.lo = first; this.hi = first;
    this.dicts = { app: [], session: [], type: [] };
    this.counts = { app: [], session: [], type: [] };
    this.bins = new Map(); // second -> Map(typeCode -> count)
    this.binSec = NaN; this.binMap = null; // the last second binned (rows arrive in order)
    this.lanes = new Map(); // (app, session) codes -> {app, session, m: Map(second -> typeCode)}
    this.firstSec = Infinity; this.lastSec = -Infinity;
    this.matches = null; this.total = 0; this.live = false;
  }
  valid(i) { return i >= this.lo && i < this.hi; }
  slot(i) { return i % this.cap; }
  text(i) {
    const s = this.slot(i), b = this.tbuf[s], o = this.toff[s], e = o + this.tlen[s];
    if (!b) return "";
    return b[o] === 1 ? dec.decode(b.subarray(o + 1, e)) : rowHead(dec.decode(b.subarray(o, e)));
  }
  name(col, code) { return code >= 0 ? (this.dicts[col][code] ?? "?") : ""; }
  bin(sec, type, n) {
    let m = sec === this.binSec ? this.binMap : this.bins.get(sec);
    if (!m) { m = new Map(); this.bins.set(sec, m); }
    this.binSec = sec; this.binMap = m;
    m.set(type, (m.get(type) || 0) + n);
    if (sec < this.firstSec) this.firstSec = sec;
    if (sec > this.lastSec) this.lastSec = sec;
  }
  evict(i) {
    const s = this.slot(i);
    for (const c of ["app", "session", "type"]) { const k = this[c][s]; if (k >= 0) this.counts[c][k]--; }
    this.tbuf[s] = undefined;
  }
  lane(a, se) {
    const key = (a + 1) * 4294967296 + (se + 1); // codes are >= -1 and < 2^21
    let l = this.lanes.get(key);
    if (!l) { l = { app: a, session: se, m: new Map() }; this.lanes.set(key, l); }
    return l.m;
  }
  put(msg, buffers) {
    const b = {};
    msg.buffers.forEach((name, k) => { b[name] = buffers[k]; });
    for (const [col, vals] of Object.entries(msg.dicts || {})) {
      for (const v of vals) { this.dicts[col].push(v); this.counts[col].push(0); }
    }
    const n = msg.n, first = msg.first;
    const id = typed(Float64Array, b.id), ts = typed(Float64Array, b.ts), lat = typed(Float32Array, b.lat);
    const app = typed(Int32Array, b.app), ses = typed(Int32Array, b.session), typ = typed(Int32Array, b.type);
    const text = bytesOf(b.text).slice(), pos = typed(Uint32Array, b.text_pos), len = typed(Uint32Array, b.text_len);
    const older = msg.kind === "older", counts = this.counts;
    if (older && first + n !== this.lo) return [];
    if (!older && first > this.hi) { for (let i = this.lo; i < this.hi; i++) this.evict(i); this.lo = this.hi = first; }
    const added = [];
    for (let k = 0; k < n; k++) {
      const i = first + k;
      if (!older && i < this.hi) continue; // already held
      if (older && i < this.hi - this.cap) continue; // the window is full
      if (!older && i - this.cap >= this.lo) { this.evict(i - this.cap); this.lo = i - this.cap + 1; }
      const s = this.slot(i);
      this.id[s] = id[k]; this.ts[s] = ts[k]; this.lat[s] = lat[k];
      this.app[s] = app[k]; this.session[s] = ses[k]; this.type[s] = typ[k];
      this.tbuf[s] = text; this.toff[s] = pos[k]; this.tlen[s] = len[k];
      const a = app[k], se = ses[k], ty = typ[k];
      if (a >= 0) counts.app[a]++;
      if (se >= 0) counts.session[se]++;
      if (ty >= 0) counts.type[ty]++;
      if (isFinite(ts[k])) {
        const sec = Math.floor(ts[k] / 1000);
        if (!older && !msg.hist) this.bin(sec, ty, 1);
        const m = this.lane(a, se);
        m.set(sec, ty);
        if (m.size > 3600) m.delete(m.keys().next().value);
      }
      added.push(i);
    }
    if (older) { if (added.length) this.lo = added[0]; }
    else if (n) this.hi = Math.max(this.hi, first + n);
    if (this.lo < this.hi - this.cap) this.lo = this.hi - this.cap;
    if (b.match && this.matches) for (const v of typed(Float64Array, b.match)) this.matches.add(v);
    if (msg.total !== undefined) this.total = msg.total;
    return added;
  }
  onMessage(msg, buffers) {
    let ev = null;
    if (msg.kind === "reset") {
      this.reset(msg.first);
      this.live = true;
      this.matches = msg.searching ? new Set() : null;
      if (msg.hist && msg.hist.n) {
        const b = {};
        msg.buffers.forEach((name, k) => { b[name] = buffers[k]; });
        for (const [col, vals] of Object.entries(msg.dicts || {})) {
          for (const v of vals) { this.dicts[col].push(v); this.counts[col].push(0); }
        }
        msg = Object.assign({}, msg, { dicts: {} });
        const sec = typed(Float64Array, b.hist_sec), typ = typed(Int32Array, b.hist_type), cnt = typed(Uint32Array, b.hist_count);
        for (let k = 0; k < sec.length; k++) this.bin(sec[k], typ[k], cnt[k]);
      }
      const added = this.put(msg, buffers);
      ev = { kind: "reset", added };
    } else if (msg.kind === "rows" || msg.kind === "older") {
      ev = { kind: msg.kind, added: this.put(msg, buffers) };
    } else if (msg.kind === "match") {
      this.matches = msg.searching ? new Set(typed(Float64Array, buffers[0])) : null;
      ev = { kind: "match" };
    } else if (msg.kind === "detail") {
      ev = { kind: "detail", detail: msg };
    }
    if (ev) for (const f of this.listeners) f(ev);
  }
}
// ------------------------------------------------------------------ pickers
class Picker {
  constructor(view, col, label) {
    this.view = view; this.col = col; this.label = label; this.selected = new Set();
    this.el = h("span", `wsn-picker wsn-picker-${col}`);
    this.button = h("button", "wsn-pick", "");
    this.el.appendChild(this.button);
    this.pop = null;
    this.button.onclick = (e) => { e.stopPropagation(); this.pop ? this.close() : this.open(); };
    this.update();
  }
  update() {
    const n = this.selected.size;
    this.button.textContent = `${this.label}: ${n ? (n === 1 ? [...this.selected][0] : n + " chosen") : "all"} ▾`;
    this.button.classList.toggle("wsn-on", n > 0);
  }
  codes() {
    if (!this.selected.size) return null;
    const dict = this.view.store.dicts[this.col];
    const out = new Set();
    dict.forEach((v, k) => { if (this.selected.has(v)) out.add(k); });
    return out;
  }
  open() {
    this.view.closePickers();
    const pop = this.pop = h("div", "wsn-pop");
    const q = h("input"); q.placeholder = `search ${this.label}…`;
    const opts = h("div", "wsn-opts");
    const all = h("button", "", "all"); all.onclick = () => { this.selected.clear(); this.changed(); fill(); };
    pop.append(q, all, opts);
    const fill = () => {
      opts.textContent = "";
      const st = this.view.store, dict = st.dicts[this.col], counts = st.counts[this.col];
      const needle = q.value.toLowerCase();
      const items = dict.map((v, k) => [v, counts[k] || 0]).filter(([v]) => !needle || v.toLowerCase().includes(needle));
      const on = (v) => (this.selected.has(v) ? 0 : 1); // chosen values first: never hidden past the 300 shown
      items.sort((a, b) => on(a[0]) - on(b[0]) || b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      for (const [v, c] of items.slice(0, 300)) {
        const lab = h("label"); const cb = h("input"); cb.type = "checkbox"; cb.checked = this.selected.has(v);
        cb.onchange = () => { cb.checked ? this.selected.add(v) : this.selected.delete(v); this.changed(); };
        lab.append(cb, h("span", "", v), h("span", "wsn-count", si(c)));
        lab.title = v; opts.appendChild(lab);
      }
      if (items.length > 300) opts.appendChild(h("div", "wsn-empty", `${items.length - 300} more: refine the search`));
      if (!items.length) opts.appendChild(h("div", "wsn-empty", "no value"));
    };
    q.oninput = fill; fill();
    pop.onclick = (e) => e.stopPropagation();
    this.el.appendChild(pop); q.focus();
  }
  close() { if (this.pop) { this.pop.remove(); this.pop = null; } }
  changed() { this.update(); this.view.filterChanged(); }
}

// ------------------------------------------------------------------ one view
class View {
  constructor(model, el) {
    // each view keeps its own window (anywidget may hand each view its own model wrapper)
    this.model = model; this.el = el; this.store = new Store(model.get("window_rows") || 100000);
    this.cols = COLS.map((c) => Object.assign({ shown: true }, c));
    this.sort = { key: "idx", dir: -1 };
    this.order = new Float64Array(0); // row indices, ascending by the sort key
    this.follow = true; this.selected = null; this.range = null; this.zoom = null;
    this.pendingAbove = 0; this.raf = 0; this.geo = null;
    this.obuf = new Float64Array(0); this.oa = 0; this.ob = 0; // see setOrder()
    this.dirty = true; this.chartDirty = true; this.dataDirty = false; this.chartSec = -1;
    this.build();
    this.onStore = (ev) => this.storeEvent(ev);
    this.store.listeners.add(this.onStore);
    this.refilter();
  }
  // a frame is requested only when something is to be drawn (no idle animation loop)
  get dirty() { return this._dirty; }
  set dirty(v) { this._dirty = v; if (v) this.kick(); }
  get chartDirty() { return this._chartDirty; }
  set chartDirty(v) { this._chartDirty = v; if (v) this.kick(); }
  // new rows redraw the chart once per completed second (its bins are whole seconds and the
  // second in progress is not drawn): in the frame of the first tick after a second turns
  get dataDirty() { return this._dataDirty; }
  set dataDirty(v) { this._dataDirty = v; if (v) this.kick(); }
  kick() { if (!this.raf && this.scroll) this.raf = requestAnimationFrame(() => { this.raf = 0; this.frame(); }); }
  destroy() {
    this.store.listeners.delete(this.onStore);
    cancelAnimationFrame(this.raf); clearInterval(this.snapTimer); clearTimeout(this.secTimer); clearTimeout(this.statusTimer);
    clearTimeout(this.fillTimer);
    document.removeEventListener("click", this.docClick);
    document.removeEventListener("keydown", this.keyDown);
    if (this.resizeObs) this.resizeObs.disconnect();
  }
  // ---------------------------------------------------------------- DOM
  build() {
    const m = this.model, root = h("div", "wsn-mon");
    this.el.appendChild(root); this.root = root;
    this.statusEl = h("div", "wsn-status"); root.appendChild(this.statusEl);
    this.questionsEl = h("div", "wsn-questions"); root.appendChild(this.questionsEl);
    const bar = h("div", "wsn-bar wsn-filters");
    this.pickers = [new Picker(this, "app", "app"), new Picker(this, "session", "session"), new Picker(this, "type", "type")];
    for (const p of this.pickers) bar.appendChild(p.el);
    this.search = h("input", "wsn-search"); this.search.placeholder = "search summary / payload (re:regex)";
    this.search.style.width = "240px"; this.search.value = m.get("search") || "";
    let timer = 0;
    this.search.oninput = () => { clearTimeout(timer); timer = setTimeout(() => { m.set("search", this.search.value); m.save_changes(); }, 250); };
    bar.appendChild(this.search);
    // the button sits in its menu's anchor from the start: a wrapper added on open shifted the
    // toolbar by one flex gap
    this.colBtn = h("button", "wsn-columns", "columns ▾"); this.colWrap = h("span", "wsn-picker");
    this.colWrap.appendChild(this.colBtn); bar.appendChild(this.colWrap);
    this.colBtn.onclick = (e) => { e.stopPropagation(); this.columnMenu(); };
    this.pauseBtn = h("button", "wsn-pause", "pause");
    this.pauseBtn.onclick = () => { m.set("paused", !m.get("paused")); m.save_changes(); };
    this.clearBtn = h("button", "wsn-clear", "clear"); this.clearBtn.onclick = () => m.send({ kind: "clear" });
    this.path = h("input", "wsn-export-path"); this.path.placeholder = "export path"; this.path.style.width = "150px";
    const csv = h("button", "wsn-export-csv", "CSV"), pq = h("button", "wsn-export-parquet", "Parquet");
    csv.onclick = () => this.exportAs("csv"); pq.onclick = () => this.exportAs("parquet");
    bar.append(this.pauseBtn, this.clearBtn, h("span", "wsn-sep"), this.path, csv, pq);
    root.appendChild(bar);
    this.noticeEl = h("div", "wsn-notice"); root.appendChild(this.noticeEl);
    // chart
    const cbar = h("div", "wsn-bar wsn-chart-bar");
    this.winBtns = {};
    for (const w of Object.keys(WINDOWS)) {
      const b = h("button", `wsn-window wsn-window-${w}`, w);
      b.onclick = () => { m.set("window", w); m.save_changes(); this.zoom = null; this.chartDirty = true; this.syncButtons(); };
      this.winBtns[w] = b; cbar.appendChild(b);
    }
    this.splitBtn = h("button", "wsn-split", "by type");
    this.splitBtn.onclick = () => { m.set("split_by_type", !m.get("split_by_type")); m.save_changes(); this.chartDirty = true; this.syncButtons(); };
    this.rangeEl = h("span", "wsn-range");
    this.rangeClear = h("button", "wsn-range-clear", "clear range"); this.rangeClear.style.display = "none";
    this.rangeClear.onclick = () => { this.zoom = null; this.setRange(null); };
    cbar.append(this.splitBtn, h("span", "wsn-sep"), this.rangeEl, this.rangeClear,
      h("span", "wsn-hint", "drag: select a time range · wheel: zoom · shift+drag: pan · double-click: reset"));
    root.appendChild(cbar);
    const charts = h("div", "wsn-charts");
    this.legend = h("div", "wsn-legend");
    this.canvas = h("canvas", "wsn-canvas wsn-chart"); this.canvas.style.height = "150px";
    this.lanesCanvas = h("canvas", "wsn-canvas wsn-lanes"); this.lanesCanvas.style.height = "0px";
    charts.append(this.legend, this.canvas, this.lanesCanvas); root.appendChild(charts);
    this.chartEvents();
    // table + detail
    const main = h("div", "wsn-main"); root.appendChild(main);
    const table = this.tableEl = h("div", "wsn-table"); main.appendChild(table);
    this.headEl = h("div", "wsn-head"); table.appendChild(this.headEl);
    this.scroll = h("div", "wsn-scroll"); table.appendChild(this.scroll);
    this.spacer = h("div", "wsn-spacer"); this.scroll.appendChild(this.spacer);
    this.emptyEl = h("div", "wsn-empty"); table.appendChild(this.emptyEl);
    this.newestBtn = h("button", "wsn-newest", ""); this.newestBtn.style.display = "none";
    this.newestBtn.onclick = () => this.toNewest();
    table.appendChild(this.newestBtn);
    this.detailEl = h("div", "wsn-detail"); this.detailEl.style.display = "none"; main.appendChild(this.detailEl);
    this.snapEl = h("div", "wsn-snapshot"); this.snapEl.style.display = "none"; root.appendChild(this.snapEl);
    this.rowEls = [];
    // a row's full text as its tooltip, set when hovered (not on every refill)
    this.spacer.addEventListener("mouseover", (e) => {
      const td = e.target.closest && e.target.closest(".wsn-td-text"), row = td && td.parentNode;
      if (row && this.store.valid(row._i)) { const t = this.store.text(row._i); if (td.title !== t) td.title = t; }
    });
    // A row is chosen by where the button went down. At a few events/s and more, rows move under
    // the pointer on every tick; a click whose button comes up over another row element is
    // delivered to their common parent, this spacer, and a handler on each row lost it. A drag
    // that ends on another row (selecting text across rows) chooses nothing.
    this.spacer.addEventListener("mousedown", (e) => {
      const row = e.target.closest && e.target.closest(".wsn-row");
      this.down = row ? { row, i: row._i, x: e.clientX, y: e.clientY } : null;
    });
    this.spacer.addEventListener("click", (e) => {
      const d = this.down; this.down = null;
      if (!d || d.i === undefined) return;
      const still = Math.abs(e.clientX - d.x) + Math.abs(e.clientY - d.y) <= 4;
      if (still || (e.target.closest && e.target.closest(".wsn-row")) === d.row) this.select(d.i);
    });
    this.scroll.addEventListener("scroll", () => {
      // the header is outside the scroller (it stays on top): it follows a horizontal scroll
      const x = this.scroll.scrollLeft;
      if (this.headEl.scrollLeft !== x) this.headEl.scrollLeft = x;
      this.follow = this.sort.key === "idx" && this.sort.dir < 0 && this.scroll.scrollTop < ROW_H / 2;
      if (this.follow) this.pendingAbove = 0;
      this.dirty = true;
    }, { passive: true });
    this.docClick = () => { this.closePickers(); this.closeMenu(); };
    document.addEventListener("click", this.docClick);
    this.keyDown = (e) => { if (e.key === "Escape") this.docClick(); };
    document.addEventListener("keydown", this.keyDown);
    this.header();
    for (const [name, fn] of [["status", () => { this.statusChanged(); this.syncStopped(); }], ["questions", () => this.renderQuestions()],
      ["question_note", () => this.renderQuestions()], ["notice", () => this.renderNotice()],
      ["search_error", () => this.renderNotice()], ["notice_ok", () => this.renderNotice()],
      ["paused", () => this.syncButtons()], ["snapshot", () => this.renderSnapshot()]]) {
      m.on(`change:${name}`, fn);
    }
    this.renderStatus(); this.renderQuestions(); this.renderNotice(); this.syncButtons(); this.renderSnapshot();
    this.snapTimer = setInterval(() => this.saveSnapshot(), 3000);
    // a resized view (window, sidebar, detail pane) redraws its canvases at their new width at
    // once, not stretched until the next second's draw
    this.resizeObs = new ResizeObserver(() => { if (this.geo) this.geo.at = 0; this.chartDirty = true; });
    this.resizeObs.observe(this.root);
  }
  // The kernel sends each tick's status just after its rows, often a frame later: drawn on its
  // own it costs a second layout and paint per tick (~5 ms here). So it waits for the next
  // frame that draws rows (the next tick, <= 1/refresh_hz), or 300 ms when no rows come.
  statusChanged() {
    this.statusDirty = true;
    if (!this.raf && !this.statusTimer) this.statusTimer = setTimeout(() => { this.statusTimer = 0; this.kick(); }, 300);
  }
  closePickers() { for (const p of this.pickers) p.close(); }
  closeMenu() { if (this.menu) { this.menu.remove(); this.menu = null; } }
  columnMenu() {
    if (this.menu) return this.closeMenu();
    const pop = this.menu = h("div", "wsn-pop wsn-column-menu");
    pop.onclick = (e) => e.stopPropagation();
    for (const c of this.cols) {
      const lab = h("label"), cb = h("input"); cb.type = "checkbox"; cb.checked = c.shown;
      cb.onchange = () => {
        c.shown = cb.checked; this.header(); this.rowEls.forEach((r) => r.remove()); this.rowEls = []; this.dirty = true;
        if (this.geo) this.geo.at = 0; // widths read again next frame: the summary column refits
      };
      lab.append(cb, h("span", "", c.label)); pop.appendChild(lab);
    }
    this.colWrap.appendChild(pop);
  }
  syncButtons() {
    const m = this.model;
    for (const [w, b] of Object.entries(this.winBtns)) b.classList.toggle("wsn-on", m.get("window") === w && !this.zoom);
    this.splitBtn.classList.toggle("wsn-on", !!m.get("split_by_type"));
    const label = m.get("paused") ? "resume" : "pause";
    if (this.pauseBtn.textContent !== label) this.pauseBtn.textContent = label; // no relayout when unchanged
    this.pauseBtn.classList.toggle("wsn-on", !!m.get("paused"));
    this.syncStopped();
  }
  // A stopped monitor has no tick: pause and clear would do nothing, so they say so.  Runs with
  // every status update (4 Hz): it writes to the DOM only when the state flips.
  syncStopped() {
    const stopped = (this.model.get("status") || {}).state === "stopped";
    if (stopped === this.shownStopped) return;
    this.shownStopped = stopped;
    for (const b of [this.pauseBtn, this.clearBtn]) {
      b.disabled = stopped; b.title = stopped ? "the monitor is stopped: run wsnotebook.monitor(...) again" : "";
    }
  }
  setWidths() {
    const t = this.tableEl;
    let x = 0;
    for (const c of this.cols) {
      t.style.setProperty(`--wsn-w-${c.key}`, c.width + "px");
      t.style.setProperty(`--wsn-x-${c.key}`, x + "px");
      if (c.shown) x += c.width;
    }
    t.style.setProperty("--wsn-row-w", x + "px");
    // the summary cell holds what its width can show (no shaping of clipped text)
    this.textChars = Math.ceil((this.cols.find((c) => c.key === "text") || { width: 560 }).width / 6);
  }
  header() {
    this.headEl.textContent = "";
    this.setWidths();
    for (const c of this.cols.filter((c) => c.shown)) {
      const th = h("div", `wsn-th wsn-th-${c.key}`, c.label);
      th.dataset.key = c.key;
      const sorted = this.sort.key === c.key || (c.key === "id" && this.sort.key === "idx");
      if (sorted) th.textContent += this.sort.dir > 0 ? " ▲" : " ▼";
      th.onclick = () => this.sortBy(c.key);
      const grip = h("div", "wsn-grip"); th.appendChild(grip);
      grip.onclick = (e) => e.stopPropagation();
      grip.onmousedown = (e) => {
        e.preventDefault(); e.stopPropagation();
        const x0 = e.clientX, w0 = c.width;
        c.userSized = true;
        const move = (ev) => { c.width = Math.max(40, w0 + ev.clientX - x0); this.setWidths(); this.relayout(); };
        const up = () => { document.removeEventListener("mousemove", move); document.removeEventListener("mouseup", up); };
        document.addEventListener("mousemove", move); document.addEventListener("mouseup", up);
      };
      this.headEl.appendChild(th);
    }
    // room for the body's vertical scrollbar: the header can scroll as far right as the rows
    this.headEl.appendChild(h("div", "wsn-th-pad"));
    this.headEl.scrollLeft = this.scroll.scrollLeft;
  }
  // The summary column fills the table's width (a grid wider than its box by default needs a
  // sideways scroll to reach its last grip) until the user resizes that column; resizing
  // another column gives or takes the difference.  Not below 240 px.
  fitText(tw) {
    const text = this.cols.find((c) => c.key === "text");
    if (!tw || !text || !text.shown || text.userSized) return;
    const others = this.cols.reduce((a, c) => a + (c.shown && c !== text ? c.width : 0), 0);
    const want = Math.max(240, Math.floor(tw - others));
    if (Math.abs(want - text.width) >= 4) { text.width = want; this.setWidths(); this.relayout(); }
  }
  relayout() { for (const r of this.rowEls) r._key = null; this.dirty = true; }
  sortBy(key) {
    // "id" toggles between arrival order (newest first, following) and ascending ids
    if (key === "id") this.sort = this.sort.key === "idx" ? { key: "id", dir: 1 } : { key: "idx", dir: -1 };
    else if (this.sort.key === key) this.sort.dir = -this.sort.dir;
    else this.sort = { key, dir: key === "lat" ? -1 : 1 };
    this.follow = this.sort.key === "idx"; this.pendingAbove = 0;
    this.header(); this.resort(); this.scroll.scrollTop = 0;
  }
  // ---------------------------------------------------------------- rows: filter and order
  keyFn() {
    const st = this.store, k = this.sort.key;
    if (k === "idx") return null;
    if (k === "id") return (i) => st.id[st.slot(i)];
    if (k === "time") return (i) => st.ts[st.slot(i)];
    if (k === "lat") return (i) => { const v = st.lat[st.slot(i)]; return isNaN(v) ? -Infinity : v; };
    if (k === "text") return (i) => st.text(i);
    return (i) => st.name(k, st[k][st.slot(i)]);
  }
  predicate() {
    const st = this.store, [apps, sessions, types] = this.pickers.map((p) => p.codes());
    const r = this.range, matches = st.matches;
    if (!apps && !sessions && !types && !r && !matches) return null;
    return (i) => {
      const s = st.slot(i);
      if (apps && !apps.has(st.app[s])) return false;
      if (sessions && !sessions.has(st.session[s])) return false;
      if (types && !types.has(st.type[s])) return false;
      if (r && !(st.ts[s] >= r[0] && st.ts[s] <= r[1])) return false;
      if (matches && !matches.has(st.id[s])) return false;
      return true;
    };
  }
  // The user changed what the table holds (a picker, the time range, the search): the old
  // scroll offset would point at unrelated rows, so show the newest rows of the new set.
  filterChanged() { this.refilter(); this.toNewest(); }
  toNewest() {
    this.scroll.scrollTop = 0; this.pendingAbove = 0; this.dirty = true;
    this.follow = this.sort.key === "idx" && this.sort.dir < 0;
  }
  refilter() {
    const st = this.store, ok = this.predicate(), out = new Float64Array(st.hi - st.lo);
    let n = 0;
    for (let i = st.lo; i < st.hi; i++) if (!ok || ok(i)) out[n++] = i;
    this.setOrder(out.subarray(0, n));
    this.resort();
  }
  resort() {
    const key = this.keyFn();
    if (key) {
      const keys = new Map();
      const arr = Array.from(this.order);
      const kv = arr.map((i) => key(i));
      const idx = arr.map((_, k) => k);
      idx.sort((a, b) => (kv[a] < kv[b] ? -1 : kv[a] > kv[b] ? 1 : arr[a] - arr[b]));
      this.setOrder(Float64Array.from(idx, (k) => arr[k]));
      keys.clear();
    } else {
      this.setOrder(Float64Array.from(this.order).sort()); // arrival order
    }
    this.dirty = true;
  }
  storeEvent(ev) {
    if (ev.kind === "detail") return this.renderDetail(ev.detail);
    if (ev.kind === "reset") this.relayout(); // the same row index may now be another row
    if (ev.kind === "match") { this.filterChanged(); this.chartDirty = true; return; } // a new search
    if (ev.kind === "reset" || ev.kind === "older") { this.refilter(); this.chartDirty = true; return; }
    const st = this.store, ok = this.predicate();
    const add = ok ? ev.added.filter(ok) : ev.added;
    const lo = st.lo;
    const key = this.keyFn();
    if (!key) this.appendOrder(add, lo);
    else {
      let old = this.order;
      if (old.length) {
        let keep = 0; const o2 = new Float64Array(old.length);
        for (const i of old) if (i >= lo) o2[keep++] = i;
        old = o2.subarray(0, keep);
      }
      let merged;
      const kv = (i) => key(i);
      add.sort((a, b) => (kv(a) < kv(b) ? -1 : kv(a) > kv(b) ? 1 : a - b));
      merged = new Float64Array(old.length + add.length);
      let a = 0, b = 0, n = 0;
      while (a < old.length || b < add.length) {
        if (b >= add.length || (a < old.length && !(kv(add[b]) < kv(old[a])))) merged[n++] = old[a++];
        else merged[n++] = add[b++];
      }
      this.setOrder(merged);
    }
    if (!this.follow && this.sort.key === "idx" && this.sort.dir < 0 && add.length) {
      this.pendingAbove += add.length;
      this.scroll.scrollTop += add.length * ROW_H; // keep the rows the user looks at in place
    }
    this.dirty = true; this.dataDirty = true;
  }
  // The row indices shown, in sort order: a view [oa, ob) of a buffer with room to spare, so in
  // arrival order a tick appends its rows and drops the evicted ones from the front without
  // copying the window (100k indices, 4 times a second, were most of the view's garbage).
  setOrder(arr) { this.obuf = arr; this.oa = 0; this.ob = arr.length; this.order = arr; }
  appendOrder(add, lo) {
    let buf = this.obuf, a = this.oa, b = this.ob;
    while (a < b && buf[a] < lo) a++;
    if (b + add.length > buf.length) { // compact, growing to twice what is live
      const live = b - a, need = live + add.length;
      if (need * 1.5 > buf.length) {
        const nb = new Float64Array(Math.max(1024, need * 2)); nb.set(buf.subarray(a, b)); buf = nb;
      } else buf.copyWithin(0, a, b);
      a = 0; b = live;
    }
    for (let k = 0; k < add.length; k++) buf[b + k] = add[k];
    b += add.length;
    this.obuf = buf; this.oa = a; this.ob = b; this.order = buf.subarray(a, b);
  }
  // ---------------------------------------------------------------- render loop
  frame() {
    const sec = Math.floor(Date.now() / 1000);
    const chart = this._chartDirty || (this._dataDirty && sec !== this.chartSec);
    // every layout read of the frame comes before its first write (no forced reflow)
    if (this._dirty || chart || !this.geo) {
      const now = performance.now(), g = this.geo || {};
      g.top = this.scroll.scrollTop; g.height = this.scroll.clientHeight || 420;
      if (chart || !g.at || now - g.at > 1000) { // widths and theme colours: once a second
        const css = getComputedStyle(this.root);
        Object.assign(g, { at: now, W: this.canvas.clientWidth || 800, LW: this.lanesCanvas.clientWidth || 800,
          TW: this.scroll.clientWidth,
          fg: css.getPropertyValue("--jp-ui-font-color1").trim() || "#222",
          grid: css.getPropertyValue("--jp-border-color2").trim() || "#ddd",
          bg: css.getPropertyValue("--jp-layout-color0").trim() || "#fff" });
      }
      this.geo = g;
      this.fitText(g.TW);
    }
    // the window's row count is drawn from the store: a page of older rows changes it without a
    // status message (a frame that stopped growing sends none)
    if (this.statusDirty || this.store.hi - this.store.lo !== this.statusWin) { this.statusDirty = false; clearTimeout(this.statusTimer); this.statusTimer = 0; this.renderStatus(); }
    if (this._dirty) { this._dirty = false; this.renderRows(); }
    if (chart) {
      this._chartDirty = false; this._dataDirty = false; this.chartSec = sec;
      this.renderChart();
      this.root.dataset.charts = String(+(this.root.dataset.charts || 0) + 1); // draws so far
      // the newest second completes after this draw: look again once it has, if no tick did
      clearTimeout(this.secTimer);
      if (this.store.lastSec >= sec) this.secTimer = setTimeout(() => { if (this.chartSec < Math.floor(Date.now() / 1000)) this.dataDirty = true; },
        1400 - (Date.now() % 1000));
    }
  }
  displayAt(pos) { const o = this.order; return this.sort.dir < 0 ? o[o.length - 1 - pos] : o[pos]; }
  renderRows() {
    const n = this.order.length, st = this.store, { top, height } = this.geo;
    // pixel sizes are compared with the numbers last written, not read back from style: Blink
    // serializes lengths to 6 significant digits ("2.19958e+06px"), so past row ~45,000 a
    // read-back never matched and every frame rewrote the spacer and every row's top
    if (this.spacerH !== n * ROW_H) { this.spacerH = n * ROW_H; this.spacer.style.height = n * ROW_H + "px"; }
    const first = Math.max(0, Math.floor(top / ROW_H) - 1), last = Math.min(n, Math.ceil((top + height) / ROW_H) + 1);
    // A fast scroll (the view jumped by more than a screen since the last frame: every row is
    // new, none readable at that speed) fills only the id and time cells of the rows it brings;
    // the other cells stay empty until a frame that moves less, or 100 ms after the last one
    // (so no row stays partial once the scroll stops). Text layout and paint of the summary,
    // app, session, type and latency cells were most of a scroll frame (issue 19 scroll probe).
    const fast = Math.abs(first - (this.shownFirst ?? first)) > last - first;
    this.shownFirst = first;
    let partial = false;
    const cols = this.cols.filter((c) => c.shown);
    // Rows keep their element while they stay on screen (it only moves): following the newest
    // rows rewrites only the new ones, and a text selection inside a row survives updates.
    // Off-screen elements are refilled (texts only: widths are CSS variables, see setWidths).
    const need = [];
    for (let pos = first; pos < last; pos++) need.push(this.displayAt(pos));
    const wanted = new Set(need);
    const byIdx = new Map(), free = [];
    for (const r of this.rowEls) {
      if (r._key === this.sort.key && wanted.has(r._i) && !byIdx.has(r._i)) byIdx.set(r._i, r);
      else free.push(r);
    }
    for (let k = 0; k < need.length; k++) {
      const pos = first + k, i = need[k];
      let row = byIdx.get(i);
      const fresh = !row;
      if (!row) row = free.pop();
      if (!row) {
        const el = h("div", "wsn-row");
        for (const c of cols) {
          const td = h("div", `wsn-td wsn-td-${c.key}${c.num ? " wsn-num" : ""}${c.mono ? " wsn-mono" : ""}`);
          if (c.key === "type") td.appendChild(h("span", "wsn-type"));
          el.appendChild(td);
        }
        this.spacer.appendChild(el); this.rowEls.push(el); row = el;
      }
      if (row.style.display) row.style.display = "";
      if (row._pos !== pos) { row._pos = pos; row.style.top = pos * ROW_H + "px"; row.classList.toggle("wsn-odd", pos % 2 === 1); }
      const s = st.slot(i), id = st.id[s];
      row.classList.toggle("wsn-sel", this.selected === id);
      if (!fresh && !(row._partial && !fast)) continue; // the same row: its cells are already right
      row._i = i; row._key = this.sort.key; partial ||= fast;
      if (row._partial !== fast) { row._partial = fast; row.classList.toggle("wsn-partial", fast); }
      row.dataset.id = id;
      for (let j = 0; j < cols.length; j++) {
        const key = cols[j].key, td = row.children[j];
        let v;
        if (fast && key !== "id" && key !== "time") { // emptied, never left showing another row
          const t = key === "type" ? td.firstChild : td;
          if (t.textContent) t.textContent = "";
          if (td.title) td.title = "";
          continue;
        }
        if (key === "id") v = String(id);
        else if (key === "time") v = clock(st.ts[s], true);
        else if (key === "lat") { const l = st.lat[s]; v = isNaN(l) ? "" : l.toFixed(1); }
        else if (key === "text") {
          v = st.text(i);
          if (td.title) td.title = v; // a cell hovered before: its tooltip follows its row
          if (v.length > this.textChars) v = v.slice(0, this.textChars) + "…";
        }
        else v = st.name(key, st[key][s]);
        if (key === "type") {
          const b = td.firstChild;
          if (b.textContent !== v) { b.textContent = v; b.style.background = colorOf(v); }
        } else if (td.textContent !== v) td.textContent = v;
      }
    }
    for (const r of free) if (!r.style.display) { r.style.display = "none"; r._i = undefined; }
    if (partial) { clearTimeout(this.fillTimer); this.fillTimer = setTimeout(() => { this.fillTimer = 0; this.dirty = true; }, 100); }
    const held = st.hi - st.lo;
    const empty = n ? "" : held ? `no match among ${held.toLocaleString()} events` : "no events yet";
    if (this.emptyEl.textContent !== empty) this.emptyEl.textContent = empty;
    const show = (el, on) => { const d = on ? "" : "none"; if (el.style.display !== d) el.style.display = d; };
    show(this.emptyEl, !n);
    const showNewest = !this.follow && this.sort.key === "idx" && this.sort.dir < 0 && this.pendingAbove > 0;
    show(this.newestBtn, showNewest);
    const newest = `⤒ follow newest (${si(this.pendingAbove)} new)`;
    if (showNewest && this.newestBtn.textContent !== newest) this.newestBtn.textContent = newest;
    show(this.snapEl, !held && !!(this.model.get("snapshot") || {}).html);
  }
  select(i) {
    const st = this.store;
    if (!st.valid(i)) return;
    const id = st.id[st.slot(i)];
    this.selected = id; this.dirty = true;
    this.follow = false; // the clicked row stays in place while new rows arrive ("follow newest" resumes)
    this.detailEl.style.display = ""; this.detailEl.textContent = "";
    this.detailEl.appendChild(h("h4", "", `event ${id} — loading…`));
    this.model.send({ kind: "detail", id });
  }
  renderDetail(d) {
    if (d.id !== this.selected) return;
    const el = this.detailEl; el.textContent = "";
    const head = h("h4", "wsn-detail-title", `event ${d.id}`);
    const close = h("button", "wsn-detail-close", "×"); close.style.float = "right";
    close.onclick = () => { this.selected = null; el.style.display = "none"; this.dirty = true; };
    el.append(close, head);
    if (d.error) { el.appendChild(h("div", "wsn-notice", d.error)); return; }
    const t = h("table");
    for (const [k, v] of Object.entries(d.fields || {})) {
      if (v === null || v === "" ) continue;
      const text = typeof v === "object" ? JSON.stringify(v)
        : typeof v === "number" && !Number.isInteger(v) ? String(+v.toFixed(3)) : String(v);
      const td = h("td");
      td.appendChild(k === "summary" ? marked(text, d.summary_hits) : document.createTextNode(text));
      const tr = h("tr"); tr.append(h("td", "wsn-k", k), td);
      t.appendChild(tr);
    }
    el.appendChild(t);
    const copy = h("button", "wsn-copy", "copy payload");
    copy.onclick = () => {
      if (!navigator.clipboard) { copy.textContent = "copy: not allowed here"; return; }
      navigator.clipboard.writeText(d.payload || "").then(
        () => { copy.textContent = "copied ✓"; setTimeout(() => { copy.textContent = "copy payload"; }, 1500); },
        () => { copy.textContent = "copy: not allowed here"; });
    };
    const pre = h("pre", "wsn-payload");
    pre.appendChild(marked(d.payload || "", d.hits));
    el.append(h("b", "", "payload "), copy);
    if (d.hits) { // the search in use: how many of its matches are in this payload
      const n = d.hits.length, more = n >= 100 ? "+" : ""; // 100: actions.py MAX_HITS
      el.appendChild(h("span", "wsn-hits", n ? ` search: ${n}${more} match${n === 1 ? "" : "es"} in the payload`
        : d.summary_hits && d.summary_hits.length ? " search: matched in the summary" : " search: no match in the payload"));
    }
    el.appendChild(pre);
    // the first match in view inside the pane (never scrolling the notebook around it)
    const first = pre.querySelector(".wsn-hit");
    if (first) el.scrollTop += first.getBoundingClientRect().top - el.getBoundingClientRect().top - el.clientHeight / 3;
    if (d.chat && d.chat.length) {
      el.appendChild(h("b", "", `chat (${d.chat.length})`));
      const chat = h("div", "wsn-chat");
      for (const msg of d.chat) {
        const div = h("div", `wsn-role-${msg.role || "other"}`);
        div.append(h("b", "", (msg.role || "") + ": "), document.createTextNode(msg.content));
        chat.appendChild(div);
      }
      el.appendChild(chat);
    }
  }
  // ---------------------------------------------------------------- status, questions, notices
  renderStatus() {
    const s = this.model.get("status") || {}, el = this.statusEl, items = [];
    const state = s.paused ? `${s.state} · paused` : s.state || "…";
    items.push([`wsn-state wsn-state-${String(s.state || "").replace(/\s+/g, "-")}`, state]);
    if (s.reason) items.push(["wsn-reason", s.reason]);
    if (s.url) items.push(["wsn-url", s.url]);
    const kv = (k, v) => items.push(["wsn-kv", v, k]);
    kv("events", (s.events || 0).toLocaleString());
    if (s.live !== undefined) { kv("live", s.live.toLocaleString()); kv("backfill", s.backfill.toLocaleString()); }
    kv("ev/s", si(s.events_per_s || 0));
    if (s.clients !== undefined && s.clients !== null) kv("clients", String(s.clients));
    if (s.p50_ms !== null && s.p50_ms !== undefined) kv("p50/p99", `${s.p50_ms.toFixed(1)}/${(s.p99_ms ?? 0).toFixed(1)} ms`);
    if (s.reconnects) kv("reconnects", String(s.reconnects));
    if (s.dropped) kv("dropped", s.dropped.toLocaleString());
    if (s.gaps) kv("gaps", String(s.gaps));
    if (s.errors) kv("errors", String(s.errors));
    this.statusWin = this.store.hi - this.store.lo;
    kv("window", `${this.statusWin.toLocaleString()} rows`);
    if (s.note) items.push(["wsn-note", s.note]);
    const shape = items.map((x) => x[0] + (x[2] || "")).join("|");
    if (shape !== this.statusShape) { // rebuild only when the set of fields changes
      this.statusShape = shape; el.textContent = "";
      for (const [cls, text, k] of items) {
        const sp = h("span", cls);
        if (k !== undefined) sp.append(h("span", "wsn-k", k), h("span", "wsn-v", text)); else sp.textContent = text;
        el.appendChild(sp);
      }
    } else {
      items.forEach(([cls, text, k], i) => {
        const t = k !== undefined ? el.children[i].lastChild : el.children[i];
        if (t.textContent !== String(text)) t.textContent = text;
      });
    }
    el.dataset.state = s.state || "";
    el.dataset.events = String(s.events || 0);
  }
  renderNotice() {
    this.noticeEl.textContent = this.model.get("notice") || "";
    this.noticeEl.classList.toggle("wsn-ok", !!this.model.get("notice_ok"));
    const bad = this.model.get("search_error") || "";
    this.search.classList.toggle("wsn-bad", !!bad);
    this.search.title = bad; // the search in use is still the last one that compiled
  }
  renderQuestions() {
    const qs = this.model.get("questions") || [], note = this.model.get("question_note") || "", el = this.questionsEl;
    el.textContent = "";
    if (!qs.length && !note) return;
    el.appendChild(h("b", "wsn-questions-title", qs.length ? `Questions waiting for an answer: ${qs.length}` : "No questions waiting"));
    qs.forEach((q, k) => {
      const row = h("div", `wsn-question wsn-question-${k}`);
      row.append(h("span", "wsn-q-id", `#${q.id}`), h("span", "wsn-q-text", q.question), h("span", "wsn-q-from", `(${q.source_app})`));
      const send = (a) => this.model.send(Object.assign({ kind: "answer", id: q.id }, a));
      if (q.read_only) row.appendChild(h("i", "", "read-only"));
      else if (q.type === "permission") {
        const y = h("button", "wsn-answer wsn-answer-yes", "Yes"), n = h("button", "wsn-answer wsn-answer-no", "No");
        y.onclick = () => send({ permission: true }); n.onclick = () => send({ permission: false });
        row.append(y, n);
      } else if (q.type === "choice") {
        const sel = h("select", "wsn-choices");
        for (const c of q.choices) { const o = h("option", "", c); o.value = c; sel.appendChild(o); }
        const b = h("button", "wsn-answer wsn-answer-choice", "Answer"); b.onclick = () => send({ choice: sel.value });
        row.append(sel, b);
      } else {
        const inp = h("input", "wsn-answer-input"); inp.placeholder = "your answer";
        const b = h("button", "wsn-answer wsn-answer-text", "Send"); b.onclick = () => send({ response: inp.value });
        row.append(inp, b);
      }
      el.appendChild(row);
    });
    if (note) el.appendChild(h("div", "wsn-questions-status wsn-q-result", note));
  }
  exportAs(format) {
    const [apps, sessions, types] = this.pickers.map((p) => [...p.selected]);
    this.model.send({ kind: "export", format, path: this.path.value, apps, sessions, types,
      t0: this.range ? this.range[0] : null, t1: this.range ? this.range[1] : null });
  }
  // ---------------------------------------------------------------- chart and lanes
  xRange() {
    const st = this.store;
    if (this.zoom) return this.zoom;
    const w = WINDOWS[this.model.get("window")] ?? 60;
    const end = (isFinite(st.lastSec) ? st.lastSec + 1 : Date.now() / 1000) * 1000;
    const start = w ? end - w * 1000 : (isFinite(st.firstSec) ? st.firstSec * 1000 : end - 60000);
    return [start, end];
  }
  chartEvents() {
    const c = this.canvas; let drag = null;
    const tAt = (x) => { const [a, b] = this.xRange(); const r = c.getBoundingClientRect(); return a + ((x - r.left - 44) / Math.max(1, r.width - 50)) * (b - a); };
    c.addEventListener("mousedown", (e) => { drag = { x0: e.clientX, t0: tAt(e.clientX), pan: e.shiftKey, range: this.xRange() }; });
    c.addEventListener("mousemove", (e) => {
      if (!drag) return;
      if (drag.pan) { // shift+drag pans the time axis
        const [a, b] = drag.range, w = c.getBoundingClientRect().width - 50;
        const dt = ((e.clientX - drag.x0) / Math.max(1, w)) * (b - a);
        this.zoom = [a - dt, b - dt]; this.syncButtons(); this.chartDirty = true; return;
      }
      drag.t1 = tAt(e.clientX); this.brush = [Math.min(drag.t0, drag.t1), Math.max(drag.t0, drag.t1)]; this.chartDirty = true;
    });
    window.addEventListener("mouseup", this.mouseUp = (e) => {
      if (!drag) return;
      const d = drag; drag = null; this.brush = null;
      if (!d.pan && Math.abs(e.clientX - d.x0) > 3) { const t1 = tAt(e.clientX); this.setRange([Math.min(d.t0, t1), Math.max(d.t0, t1)]); }
      this.chartDirty = true;
    });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [a, b] = this.xRange(), t = tAt(e.clientX), f = e.deltaY > 0 ? 1.25 : 0.8;
      this.zoom = [t - (t - a) * f, t + (b - t) * f]; this.syncButtons(); this.chartDirty = true;
    }, { passive: false });
    c.addEventListener("dblclick", () => { this.zoom = null; this.setRange(null); this.syncButtons(); });
  }
  setRange(r) {
    this.range = r; if (r) { this.zoom = [r[0], r[1]]; }
    this.rangeEl.textContent = r ? `time ${clock(r[0], true)} – ${clock(r[1], true)}` : "";
    this.rangeClear.style.display = r ? "" : "none";
    this.syncButtons(); this.filterChanged(); this.chartDirty = true;
  }
  renderChart() {
    const st = this.store, c = this.canvas, dpr = window.devicePixelRatio || 1;
    const { W, fg, grid, bg } = this.geo, H = 150; // read at the start of the frame
    if (c.width !== W * dpr) { c.width = W * dpr; c.height = H * dpr; }
    const g = c.getContext("2d"); g.setTransform(dpr, 0, 0, dpr, 0, 0); g.clearRect(0, 0, W, H);
    const [t0, t1] = this.xRange(), L = 44, R = W - 6, T = 6, B = H - 18;
    const s0 = Math.floor(t0 / 1000), s1 = Math.ceil(t1 / 1000);
    // the second still in progress is left out (no false dip at the right edge)
    const current = Math.floor(Date.now() / 1000);
    const from = Math.max(s0, st.firstSec), to = Math.min(s1, st.lastSec >= current ? current - 1 : st.lastSec);
    const split = !!this.model.get("split_by_type");
    const totals = [], perType = new Map();
    let top = 0;
    if (isFinite(from) && to >= from && to - from < 200000) {
      for (let s = from; s <= to; s++) {
        const m = st.bins.get(s); let tot = 0;
        if (m) for (const [ty, n] of m) { tot += n; if (split) { let a = perType.get(ty); if (!a) perType.set(ty, a = []); a.push([s, n]); } }
        totals.push([s, tot]); if (tot > top) top = tot;
      }
    }
    top = niceTop(top * 1.1);
    const X = (ms) => L + ((ms - t0) / (t1 - t0)) * (R - L), Y = (v) => B - (v / top) * (B - T);
    g.font = "10px sans-serif"; g.fillStyle = fg; g.strokeStyle = grid; g.lineWidth = 1;
    const mant = top / Math.pow(10, Math.floor(Math.log10(top))), div = Math.round(mant) === 2 ? 4 : 5;
    for (let k = 0; k <= div; k++) { const v = (top * k) / div, y = Y(v); g.beginPath(); g.moveTo(L, y); g.lineTo(R, y); g.stroke(); g.fillText(si(v), 2, y + 3); }
    const span = (t1 - t0) / 1000, steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    const step = steps.find((s) => span / s <= 8) || 7200;
    // time labels centred on their tick, kept inside the canvas (the last one was cut at the
    // right edge), and one that would touch the previous label is left out
    let prevEnd = -Infinity;
    for (let s = Math.ceil(t0 / 1000 / step) * step; s * 1000 <= t1; s += step) {
      const text = clock(s * 1000), w = g.measureText(text).width;
      const x = Math.min(Math.max(X(s * 1000) - w / 2, 0), W - w - 1);
      if (x > prevEnd + 4) { g.fillText(text, x, H - 4); prevEnd = x + w; }
    }
    if (this.range) { g.fillStyle = "rgba(25,118,210,.15)"; g.fillRect(X(this.range[0]), T, X(this.range[1]) - X(this.range[0]), B - T); }
    if (this.brush) { g.fillStyle = "rgba(25,118,210,.3)"; g.fillRect(X(this.brush[0]), T, X(this.brush[1]) - X(this.brush[0]), B - T); }
    const line = (pts, color, width, fill) => {
      if (!pts.length) return;
      g.beginPath(); g.strokeStyle = color; g.lineWidth = width;
      pts.forEach(([s, n], k) => { const x = X(s * 1000 + 500), y = Y(n); k ? g.lineTo(x, y) : g.moveTo(x, y); });
      g.stroke();
      if (fill) { g.lineTo(X(pts[pts.length - 1][0] * 1000 + 500), B); g.lineTo(X(pts[0][0] * 1000 + 500), B); g.closePath(); g.fillStyle = fill; g.fill(); }
    };
    g.save(); g.beginPath(); g.rect(L, T - 2, R - L, B - T + 4); g.clip();
    if (!split) line(totals, fg, 1.6, "rgba(59,110,165,.18)");
    const entries = [["events/s, total", fg]];
    const leg = (name, color) => entries.push([name, color]);
    if (split) {
      // bands stacked in the order of the types' codes (stable while the chart runs), legend
      // from the top band down; the total is the top of the stack, its line drawn over them
      const order = [...perType.keys()].sort((a, b) => a - b).map((ty) => [ty, perType.get(ty)]);
      const bands = stacked(totals, order);
      const xs = totals.map(([s]) => X(s * 1000 + 500));
      for (const [ty, lower, upper] of bands) {
        const col = colorOf(st.name("type", ty) || "(none)");
        g.beginPath();
        xs.forEach((x, k) => (k ? g.lineTo(x, Y(upper[k])) : g.moveTo(x, Y(upper[k]))));
        for (let k = xs.length - 1; k >= 0; k--) g.lineTo(xs[k], Y(lower[k]));
        g.closePath(); g.globalAlpha = 0.55; g.fillStyle = col; g.fill(); g.globalAlpha = 1;
      }
      for (const [ty] of bands.slice().reverse()) { const name = st.name("type", ty) || "(none)"; leg(name, colorOf(name)); }
      line(totals, fg, 1.6, null);
    }
    g.restore();
    const key = JSON.stringify(entries);
    if (key !== this.legendKey) {
      this.legendKey = key; this.legend.textContent = "";
      for (const [name, color] of entries) { const sp = h("span", "", name); sp.style.setProperty("--c", color); this.legend.appendChild(sp); }
    }
    this.renderLanes(t0, t1, L, R, fg, grid, bg);
  }
  renderLanes(t0, t1, L, R, fg, grid, bg) {
    const st = this.store, c = this.lanesCanvas, dpr = window.devicePixelRatio || 1;
    // the seconds with some part in [t0, t1): a lane active only in the second that starts at
    // t1 would be listed with its bar clipped away
    const s0 = Math.floor(t0 / 1000), s1 = Math.ceil(t1 / 1000) - 1;
    const lanes = [];
    for (const lane of st.lanes.values()) {
      const m = lane.m;
      let last = -Infinity;
      if (m.size <= s1 - s0) { for (const s of m.keys()) if (s >= s0 && s <= s1 && s > last) last = s; }
      else for (let s = s1; s >= s0; s--) if (m.has(s)) { last = s; break; }
      if (last > -Infinity) lanes.push([lane, m, last]);
    }
    lanes.sort((a, b) => b[2] - a[2]);
    const shown = lanes.slice(0, 12), LH = 13, more = lanes.length - shown.length;
    // "+N agents" gets a line of its own under the lanes (drawn over the last lane, it hid its newest bars)
    const H = shown.length ? (shown.length + (more > 0 ? 1 : 0)) * LH + 4 : 0;
    const W = this.geo.LW, heightPx = H + "px";
    if (c.style.height !== heightPx) c.style.height = heightPx;
    if (c.width !== W * dpr || c.height !== H * dpr) { c.width = W * dpr; c.height = H * dpr; }
    if (!H) return;
    const g = c.getContext("2d"); g.setTransform(dpr, 0, 0, dpr, 0, 0); g.clearRect(0, 0, W, H);
    const X = (ms) => L + ((ms - t0) / (t1 - t0)) * (R - L), bw = Math.max(1.5, X(1000) - X(0) - 0.5);
    g.font = "9px sans-serif";
    // the bars stay inside the chart's plot area (the second holding t0 starts left of it), so
    // the lanes line up with the chart above; each label sits on a plate of the background,
    // readable over the bars it may cover (a label is wider than the chart's left margin)
    g.save(); g.beginPath(); g.rect(L, 0, R - L, H); g.clip();
    shown.forEach(([, m], k) => {
      const y = 2 + k * LH;
      g.fillStyle = grid; g.fillRect(L, y + LH - 2, R - L, 1);
      const draw = (s, ty) => { g.fillStyle = colorOf(st.name("type", ty)); g.fillRect(X(s * 1000), y + 2, bw, LH - 5); };
      if (m.size <= s1 - s0) { for (const [s, ty] of m) if (s >= s0 && s <= s1) draw(s, ty); }
      else for (let s = s0; s <= s1; s++) { const ty = m.get(s); if (ty !== undefined) draw(s, ty); }
    });
    g.restore();
    // a name cut only when that saves something ("session-19" whole, a UUID's first 6 + …)
    const short = (name, n) => (name.length <= n + 4 ? name : name.slice(0, n) + "…");
    const label = (text, x, y) => {
      g.globalAlpha = 0.85; g.fillStyle = bg; g.fillRect(x - 1, y - LH + 5, g.measureText(text).width + 3, LH - 2);
      g.globalAlpha = 1; g.fillStyle = fg; g.fillText(text, x, y);
    };
    shown.forEach(([lane], k) => {
      const app = st.name("app", lane.app), ses = st.name("session", lane.session);
      label(`${short(app, 9)}:${short(ses, 6)}`, 1, 2 + k * LH + LH - 4);
    });
    if (more > 0) label(`+${more} agents`, R - g.measureText(`+${more} agents`).width - 2, H - 4);
  }
  // ---------------------------------------------------------------- saved-notebook snapshot
  saveSnapshot() {
    const st = this.store;
    if (!st.live || st.hi === this.snapHi) return;
    // the first snapshot soon, then every 15 s (each is a state update the kernel receives)
    if (this.snapAt && Date.now() - this.snapAt < 15000) return;
    this.snapHi = st.hi; this.snapAt = Date.now();
    const rows = [];
    for (let pos = 0; pos < Math.min(15, this.order.length); pos++) {
      const i = this.displayAt(pos), s = st.slot(i);
      rows.push([st.id[s], clock(st.ts[s], true), st.name("app", st.app[s]), st.name("session", st.session[s]), st.name("type", st.type[s]), st.text(i).slice(0, 120)]);
    }
    const esc = (v) => String(v).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);
    const html = "<table><tr><th>id</th><th>time</th><th>app</th><th>session</th><th>type</th><th>summary / payload</th></tr>" +
      rows.map((r) => "<tr>" + r.map((v) => `<td>${esc(v)}</td>`).join("") + "</tr>").join("") + "</table>";
    let png = "";
    try { png = this.canvas.toDataURL("image/png"); } catch (e) { png = ""; }
    try {
      this.model.set("snapshot", { html, png, events: st.total, at: new Date().toISOString() });
      this.model.save_changes();
      this.root.dataset.snapshotAt = String(Date.now());
    } catch (e) { /* no kernel: nothing to save */ }
  }
  renderSnapshot() {
    const snap = this.model.get("snapshot") || {}, el = this.snapEl;
    if (this.store.live || !snap.html) { el.style.display = "none"; return; }
    el.innerHTML = "";
    el.appendChild(h("div", "wsn-k", `saved snapshot of ${Number(snap.events || 0).toLocaleString()} events (${snap.at || ""}); run the cell for the live monitor`));
    if (snap.png && snap.png.startsWith("data:image/png")) { const img = h("img"); img.src = snap.png; el.appendChild(img); }
    const t = h("div"); t.innerHTML = snap.html; el.appendChild(t);
    el.style.display = "";
  }
}

export default {
  render({ model, el }) {
    const view = new View(model, el);
    const onMsg = (msg, buffers) => {
      try { view.store.onMessage(msg, buffers || []); } catch (e) { console.error("wsnotebook monitor", e); }
    };
    model.on("msg:custom", onMsg);
    model.send({ kind: "hello" }); // this view holds no rows yet: the kernel sends a fresh window
    return () => { model.off("msg:custom", onMsg); window.removeEventListener("mouseup", view.mouseUp); view.destroy(); };
  },
};
