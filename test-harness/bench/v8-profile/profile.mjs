// V8 profile of meshsight.wasm: the module's own cost per request, in the engine Envoy runs it in.
//
// Envoy's CPU time per request is noisy on a shared machine and says nothing about where the
// time goes inside the VM. This host runs the module in Node's V8 behind the proxy-wasm ABI
// 0.2.1 (the calls meshsight makes, answered from memory the way Envoy answers them), drives a
// request's lifecycle (context create, request headers, response headers, log, done, delete)
// many times and reports the mean wall time per request for each scenario. With `--cpu-prof`
// Node writes a .cpuprofile whose frames are the module's functions (build the module with
// names kept: `make v8-profile` does).
//
// usage: node --no-liftoff profile.mjs --wasm meshsight.wasm --policies DIR [--noop NOOP.wasm]
//        [--requests N] [--only NAME] [--cold-mib N]   (`make v8-profile`)
//
// Two figures per scenario:
// - warm: requests back to back, so the module's code and data stay in the core's caches;
// - cold: before each request the host writes over a buffer larger than the core's L2
//   (`--cold-mib`, 8 by default; 0 skips the column), and only the request is timed. In Envoy
//   the codec, router, upstream and kernel run between two requests of a worker and evict
//   much of what the module touched, so this figure is the closer one to the module's share of
//   Envoy's CPU per request: what the module's working set (code executed and data touched
//   per request) costs when it comes back from L3.
//
// What it does not count: Envoy's own work per host call (building a property's value,
// filter state, stats, the access logger). Envoy's bench (`make bench`) measures the whole.

import fs from "node:fs";
import path from "node:path";

import { ProxyWasmHost, enc, parseArgs, serialize, u64 } from "../../wasm-host/proxy_wasm_host.mjs";

const args = parseArgs(process.argv.slice(2));
const WASM = args.wasm;
const POLICIES = args.policies;
const REQUESTS = Number(args.requests ?? 20000);
const COLD_BYTES = Number(args["cold-mib"] ?? 8) * 1048576;

const BENCH_HEADERS = [
  [":method", "GET"],
  [":path", "/api/v1/products/42?page=2&sort=price"],
  [":authority", "shop.example.com"],
  [":scheme", "http"],
  ["user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"],
  ["accept", "application/json, text/plain, */*"],
  ["accept-language", "en-US,en;q=0.9,de;q=0.8"],
  ["accept-encoding", "gzip, deflate, br"],
  ["cookie", "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.1234567890.1700000000"],
  ["authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwic2NvcGUiOiJyZWFkIn0.c2lnbmF0dXJl"],
  ["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
  ["referer", "https://shop.example.com/catalog?page=2"],
  ["x-forwarded-for", "203.0.113.7"],
  ["x-forwarded-proto", "http"],
  ["x-request-id", "6f1c1b1e-2b4f-4e55-9a57-6d0f5a8d2c11"],
];
const RESPONSE_HEADERS = [
  [":status", "200"],
  ["content-type", "application/json"],
  ["content-length", "11"],
  ["date", "Sat, 28 Nov 2026 23:00:00 GMT"],
  ["server", "envoy"],
];

// Per-request properties as Envoy returns them (integers as 8 little-endian bytes).
function properties(ctx, rootId, config) {
  return {
    plugin_root_id: enc.encode(rootId),
    plugin_name: enc.encode(rootId),
    "connection\0id": u64(1 + (ctx % 16)),
    "source\0address": enc.encode("10.1.2.3:" + (40000 + (ctx % 16))),
    "destination\0address": enc.encode("10.1.9.9:8080"),
    "connection\0uri_san_peer_certificate": enc.encode("spiffe://cluster.local/ns/shop/sa/web"),
    "downstream_peer\0namespace": enc.encode("shop"),
    "downstream_peer\0workload": enc.encode("web"),
    "downstream_peer\0service": enc.encode("web"),
    "request\0protocol": enc.encode("HTTP/1.1"),
    "request\0id": enc.encode("6f1c1b1e-2b4f-4e55-9a57-6d0f5a8d2c11"),
    "request\0time": u64(1795993200000000000n + BigInt(ctx)),
    "request\0duration": u64(250000),
    "request\0total_size": u64(612),
    "response\0code": u64(200),
    "response\0total_size": u64(180),
    "response\0flags": u64(0),
    "response\0code_details": enc.encode("direct_response"),
    "node\0metadata\0NAMESPACE": enc.encode("shop"),
    "node\0metadata\0WORKLOAD_NAME": enc.encode("checkout"),
    "xds\0cluster_name": enc.encode("inbound|8080||"),
  };
}

// The host (test-harness/wasm-host/), answering as Envoy would for the bench's request: each
// call counted, properties per kept-alive connection, header maps serialized once.
class Host extends ProxyWasmHost {
  constructor(module, rootId, config) {
    super(module, config);
    this.rootId = rootId;
    this.calls = {};
    this.filterState = new Map();
    this.keepFilterState = false;
    this.localReplies = 0;
    this.httpCalls = 0;
    this.ctx = 1;
    this.serializedMaps = new Map();
    this.props = properties(0, rootId, config);
    // Sixteen kept-alive connections, their properties built once (host work is not measured).
    this.perConnection = Array.from({ length: 16 }, (_, i) => properties(i, rootId, config));
  }
  wrapImport(name, f) {
    return (...a) => {
      this.calls[name] = (this.calls[name] ?? 0) + 1;
      return f(...a);
    };
  }
  log(level, ptr, size) {
    if (level >= 4) console.error("wasm log:", this.str(ptr, size));
  }
  buffer(type) {
    if (type === 7) return this.config;
    return type === 6 ? new Uint8Array() : undefined;
  }
  property(key) {
    return this.filterState.size ? this.filterState.get(key) ?? this.props[key] : this.props[key];
  }
  // Filter state is kept only for the three-plugin scenario, where one plugin reads what
  // another wrote; elsewhere the host's bookkeeping is left out of the module's time.
  setProperty(pathPtr, pathSize, dataPtr, dataSize) {
    if (!this.keepFilterState) return;
    this.filterState.set(this.key(pathPtr, pathSize), this.bytes(dataPtr, dataSize).slice());
  }
  httpCall() {
    return ++this.httpCalls;
  }
  localReply() {
    this.localReplies++;
  }
  headerMap(type) {
    if (type === 0) return this.reqHeaders;
    if (type === 2) return this.respHeaders;
    return [];
  }
  // The serialized map, built once per header set (the host's own work is not measured).
  serializedMap(type) {
    const pairs = this.headerMap(type);
    let cached = this.serializedMaps.get(pairs);
    if (!cached) this.serializedMaps.set(pairs, (cached = serialize(pairs)));
    return cached;
  }
  // Serializes a header set ahead of time, so that building it is not timed.
  prepare(pairs) {
    this.serializedMaps.set(pairs, serialize(pairs));
  }
  start() {
    if (!this.configure()) throw new Error("configuration refused");
  }
  request(headers) {
    const ctx = ++this.ctx;
    this.reqHeaders = headers;
    this.respHeaders = RESPONSE_HEADERS;
    this.filterState.clear();
    this.props = this.perConnection[ctx % 16];
    this.x.proxy_on_context_create(ctx, 1);
    this.x.proxy_on_request_headers(ctx, headers.length, 1);
    this.x.proxy_on_response_headers(ctx, RESPONSE_HEADERS.length, 0);
    this.x.proxy_on_log(ctx);
    this.x.proxy_on_done(ctx);
    this.x.proxy_on_delete(ctx);
  }
}

// The bench's larger pack (test-harness/bench/src/main.rs `with_custom_signatures`): literal and two-group
// rules in every location, some narrowed to a header, none of which the request carries.
function withCustomSignatures(mirror, n) {
  const locations = [["path", "query"], ["headers"], ["params", "body"], ["path", "query", "params", "headers", "body"]];
  const rules = Array.from({ length: n }, (_, i) => {
    const rule = {
      id: `bench-${i}`,
      name: `bench rule ${i}`,
      category: `bench_${i % 10}`,
      severity: "medium",
      references: ["bench"],
      in: locations[i % locations.length],
      match: i % 3 === 0
        ? { all: [[`ioc-${i}-a`], [`ioc-${i}-b`, `ioc-${i}-c`]] }
        : { any: [`indicator-${String(i).padStart(4, "0")}`, `/bench/${i}/x`] },
    };
    if (i % 7 === 0) {
      rule.headers = ["x-bench"];
      rule.in = ["headers"];
    }
    return rule;
  });
  return { ...mirror, signatures: { ...mirror.signatures, packs: [{ pack: "bench", rules }] } };
}

// The mirror with every signature switched off: what the rest of the job costs.
function withoutSignatures(mirror) {
  return { ...mirror, signatures: { builtin: false } };
}

function scenarios() {
  const read = (f) => JSON.parse(fs.readFileSync(path.join(POLICIES, f), "utf8"));
  const one = read("meshsight.json");
  const accessLog = { ...one, audit: { ...one.audit, sink: "access_log" } };
  const rows = [
    ["allowlist", "meshsight", { allowlist: one.allowlist }],
    ["mirror", "meshsight", { mirror: one.mirror }],
    ["mirror, +1,000 rules", "meshsight", { mirror: withCustomSignatures(one.mirror, 1000) }],
    ["mirror, no signatures", "meshsight", { mirror: withoutSignatures(one.mirror) }],
    ["audit (access_log)", "meshsight", { audit: { ...one.audit, sink: "access_log" } }],
    ["audit (http sink)", "meshsight", { audit: one.audit }],
    ["one pass, access_log", "meshsight", accessLog],
    ["one pass, http sink", "meshsight", one],
    // The same requests but every per-request value new (path, query, user agent, cookie,
    // token, trace and request ids, referer, client address; the accept headers repeat, as
    // they do in production): what the scan costs when the worker's clean-piece memory has
    // never seen a piece.
    ["mirror, new values", "meshsight", { mirror: one.mirror }, true],
    ["mirror +1,000, new values", "meshsight", { mirror: withCustomSignatures(one.mirror, 1000) }, true],
    ["one pass, new values", "meshsight", accessLog, true],
  ];
  // The anchors (test-harness/bench/noop-filter): nothing, and the one pass's host calls with no logic
  // (its host-call column should match "one pass, access_log").
  if (args.noop) {
    rows.unshift(
      ["no-op module", "noop", ""],
      ["host-call probe", "noop", "one-pass-host-calls"],
    );
  }
  return rows.filter(([name]) => !args.only || name.includes(args.only));
}

// Request heads whose per-request values are all new, built before timing.
function freshHeads(count) {
  return Array.from({ length: count }, (_, i) => {
    const n = (i * 2654435761) % 4294967296;
    const hex = n.toString(16).padStart(8, "0");
    return BENCH_HEADERS.map(([k, v]) => {
      switch (k) {
        case ":path": return [k, `/api/v1/products/${i}?page=${i % 97}&sort=p${hex}`];
        case "user-agent": return [k, `${v} build/${i}`];
        case "cookie": return [k, `session=${hex}${hex}${hex}${hex}; theme=dark; _ga=GA1.2.${n}.1700000000`];
        case "authorization": return [k, `Bearer eyJhbGciOiJIUzI1NiJ9.${Buffer.from(`{"sub":"user-${i}"}`).toString("base64url")}.c2ln${hex}`];
        case "traceparent": return [k, `00-${hex}${hex}${hex}${hex}-${hex}${hex}-01`];
        case "referer": return [k, `https://shop.example.com/catalog?page=${i}`];
        case "x-forwarded-for": return [k, `203.0.${(i >> 8) & 255}.${i & 255}`];
        case "x-request-id": return [k, `6f1c1b1e-2b4f-4e55-9a57-${hex}${hex.slice(0, 4)}`];
        default: return [k, v];
      }
    });
  });
}

const module = new WebAssembly.Module(fs.readFileSync(WASM));
const noopModule = args.noop ? new WebAssembly.Module(fs.readFileSync(args.noop)) : null;
// Every scenario's module is set up and warmed first; then the scenarios take turns, a batch
// each, for ten rounds, and each keeps its fastest batch. The machine's slow spells (another
// process, a busy host) then fall on all scenarios alike instead of on whichever ran during
// them, and only ever add time.
const rounds = 10;
const batch = Math.max(1, Math.floor(REQUESTS / rounds));
const runs = scenarios().map(([name, rootId, policy, fresh]) => {
  const config = typeof policy === "string" ? policy : JSON.stringify(policy);
  const host = new Host(rootId === "noop" ? noopModule : module, rootId, config);
  host.start();
  const heads = fresh ? freshHeads(batch * rounds + 2000) : null;
  if (heads) for (const h of heads) host.prepare(h);
  let next = 0;
  const head = () => (heads ? heads[next++ % heads.length] : BENCH_HEADERS);
  for (let i = 0; i < 2000; i++) host.request(head()); // warm up (the JIT's tiers)
  host.calls = {};
  return { name, host, head, us: Infinity, coldUs: Infinity };
});
// Evicts the core's L1 and L2 (one write per cache line of a buffer larger than L2).
const evictee = new Uint8Array(Math.max(COLD_BYTES, 64));
function evict() {
  for (let j = 0; j < COLD_BYTES; j += 64) evictee[j]++;
}
for (let r = 0; r < rounds; r++) {
  for (const run of runs) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) run.host.request(run.head());
    run.us = Math.min(run.us, Number(process.hrtime.bigint() - t0) / 1000 / batch);
  }
}
// The cold figure: a tenth of the requests (each one costs an eviction pass), timed one by one.
const coldBatch = Math.max(1, Math.floor(batch / 10));
for (let r = 0; COLD_BYTES > 0 && r < rounds; r++) {
  for (const run of runs) {
    let ns = 0n;
    for (let i = 0; i < coldBatch; i++) {
      const h = run.head();
      evict();
      const t0 = process.hrtime.bigint();
      run.host.request(h);
      ns += process.hrtime.bigint() - t0;
    }
    run.coldUs = Math.min(run.coldUs, Number(ns) / 1000 / coldBatch);
  }
}
const coldHeader = COLD_BYTES > 0 ? `${"µs cold".padStart(8)} ` : "";
console.log(`${"scenario".padEnd(26)} ${"µs/request".padStart(10)} ${coldHeader}${"heap MiB".padStart(8)}  host calls per request`);
for (const { name, host, us, coldUs } of runs) {
  const total = batch * rounds + (COLD_BYTES > 0 ? coldBatch * rounds : 0);
  const calls = Object.entries(host.calls)
    .map(([k, v]) => `${k.replace("proxy_", "")}=${(v / total).toFixed(1)}`)
    .join(" ");
  const mib = (host.x.memory.buffer.byteLength / 1048576).toFixed(1);
  const cold = COLD_BYTES > 0 ? `${coldUs.toFixed(2).padStart(8)} ` : "";
  console.log(`${name.padEnd(26)} ${us.toFixed(2).padStart(10)} ${cold}${mib.padStart(8)}  ${calls}`);
}
