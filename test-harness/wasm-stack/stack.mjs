// The Wasm stack meshsight.wasm needs, measured on the shipped module in V8 (Node's, the engine
// Envoy runs it in): `make wasm-stack` (mk/size.mk), part of `make test`.
//
// Why: the module links with a small stack (WASM_STACK_SIZE in the Makefile, 128 KiB instead of
// wasm32's 1 MiB, because each static address below 2^20 is a byte shorter). The stack sits
// first in linear memory and grows down from `__stack_pointer`'s initial value towards address
// 0; a callback that needs more runs below 0 and traps, and in Envoy that fails the request or
// the configuration. The native tests (`cargo test -p meshsight`) cannot see this: there the
// module is native code on a thread's stack. So this host runs the real .wasm through the
// deepest cases known and fails when any uses more than half of the stack:
// - configure with every policy `make bench` and the Istio manifests use, the one pass with a
//   pack of 1,000 rules in every location, and policies nested to the JSON reader's limit (127
//   arrays or objects: the reader recurses per level, then refuses the policy with its path);
// - request bodies the mirror decodes: JSON nested to the parser's limit and past it (arrays,
//   objects, both), Log4j lookups nested past their limit, gzip and deflate (the inflater's
//   state), a gzip bomb, multipart at its part limit, forms, base64 credentials, and the
//   same deep JSON inflated and inside multipart;
// - the audit records of all of these, their batches answered and flushed on the tick.
//
// How: after instantiation and before every case the host fills the stack region (address 0
// up to the initial `__stack_pointer`, read from the module's global section) with a canary
// byte; between callbacks the stack pointer is back at its top, so everything below is free.
// After the case, the lowest byte that is no longer the canary bounds how deep the stack went.
// The report lists every case's depth; the check fails on a trap, on a depth over half the
// stack, or when the module's stack is not the size the Makefile asked for.
//
// usage: node stack.mjs --wasm meshsight.wasm --policies DIR --stack-size BYTES

import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

import { ProxyWasmHost, enc, parseArgs, u64 } from "../wasm-host/proxy_wasm_host.mjs";

const args = parseArgs(process.argv.slice(2));
const WASM = args.wasm;
const POLICIES = args.policies;
const STACK_SIZE = Number(args["stack-size"]);
const CANARY = 0xa5;


function fail(message) {
  console.error(`wasm-stack: ${message}`);
  process.exit(1);
}

// The initial value of the module's first global, `__stack_pointer` (rustc's wasm32 targets
// define no other mutable i32 global before it, and import none).
function initialStackPointer(bytes) {
  let at = 8;
  const uleb = () => {
    let v = 0, shift = 0, b;
    do {
      b = bytes[at++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return v;
  };
  const sleb = () => {
    let v = 0, shift = 0, b;
    do {
      b = bytes[at++];
      v |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return shift < 32 && b & 0x40 ? v | (-1 << shift) : v;
  };
  while (at < bytes.length) {
    const id = bytes[at++];
    const size = uleb();
    const end = at + size;
    if (id === 6) {
      uleb(); // count
      const [type, mutable, op] = [bytes[at], bytes[at + 1], bytes[at + 2]];
      at += 3;
      if (type !== 0x7f || mutable !== 1 || op !== 0x41) fail("the module's first global is not a mutable i32 set by i32.const");
      return sleb();
    }
    at = end;
  }
  return fail("the module has no global section (no __stack_pointer)");
}

// Per-request properties as Envoy returns them (integers as 8 little-endian bytes).
const PROPERTIES = {
  plugin_root_id: enc.encode("meshsight"),
  plugin_name: enc.encode("meshsight"),
  "connection\0id": u64(7),
  "source\0address": enc.encode("10.1.2.3:40000"),
  "destination\0address": enc.encode("10.1.9.9:8080"),
  "connection\0uri_san_peer_certificate": enc.encode("spiffe://cluster.local/ns/shop/sa/web"),
  "downstream_peer\0namespace": enc.encode("shop"),
  "downstream_peer\0workload": enc.encode("web"),
  "request\0protocol": enc.encode("HTTP/1.1"),
  "request\0id": enc.encode("6f1c1b1e-2b4f-4e55-9a57-6d0f5a8d2c11"),
  "request\0time": u64(1795993200000000000n),
  "request\0duration": u64(250000),
  "request\0total_size": u64(612),
  "response\0code": u64(200),
  "response\0total_size": u64(180),
  "response\0flags": u64(0),
  "response\0code_details": enc.encode("via_upstream"),
  "node\0metadata\0NAMESPACE": enc.encode("shop"),
  "node\0metadata\0WORKLOAD_NAME": enc.encode("checkout"),
  "xds\0cluster_name": enc.encode("inbound|8080||"),
};

const RESPONSE_HEADERS = [
  [":status", "200"],
  ["content-type", "application/json"],
  ["content-length", "2"],
];

// The host (test-harness/wasm-host/): fixed properties, the case's request and body, every
// callout recorded (and answered 200 after the request), the clock two seconds on per request.
class Host extends ProxyWasmHost {
  constructor(module, config) {
    super(module, config);
    this.calls = [];
    this.nextCall = 0;
    this.ctx = 1;
    this.maps = { 0: [], 2: [], 6: [] };
    this.body = new Uint8Array();
    this.callBody = new Uint8Array();
  }
  log(level, ptr, size) {
    if (args.verbose && level >= Number(args.verbose)) console.error("wasm log:", this.str(ptr, size));
  }
  // Two seconds per request: each tick finds the audit batch due.
  now() {
    return 1795993200000000000n + BigInt(this.ctx) * 2000000000n;
  }
  buffer(type) {
    return { 0: this.body, 4: this.callBody, 7: this.config }[type];
  }
  property(key) {
    return PROPERTIES[key];
  }
  headerMap(type) {
    return this.maps[type] ?? [];
  }
  httpCall(upstreamPtr, upstreamSize) {
    const token = ++this.nextCall;
    this.calls.push(token);
    if (this.str(upstreamPtr, upstreamSize).includes("sensor")) this.copies++;
    return token;
  }
  // The root context started and configured; whether the configuration was accepted.
  start() {
    return this.configure();
  }
  // One request's lifecycle, its body in one chunk; then every callout the module made
  // answered 200 and a tick (the audit batch flushed and answered too).
  request(headers, body) {
    const ctx = ++this.ctx;
    this.copies = 0;
    this.maps[0] = headers;
    this.maps[2] = RESPONSE_HEADERS;
    this.body = body;
    this.x.proxy_on_context_create(ctx, 1);
    this.x.proxy_on_request_headers(ctx, headers.length, body.length === 0 ? 1 : 0);
    if (body.length) this.x.proxy_on_request_body(ctx, body.length, 1);
    this.x.proxy_on_response_headers(ctx, RESPONSE_HEADERS.length, 1);
    this.x.proxy_on_log(ctx);
    this.x.proxy_on_done(ctx);
    this.x.proxy_on_delete(ctx);
    this.answerCalls();
    this.x.proxy_on_tick(1);
    this.answerCalls();
    return this.copies;
  }
  answerCalls() {
    this.maps[6] = [[":status", "200"]];
    this.callBody = new Uint8Array();
    while (this.calls.length) this.x.proxy_on_http_call_response(1, this.calls.shift(), 1, 0, 0);
  }
}


// --- the cases ----------------------------------------------------------------------------------

const read = (f) => JSON.parse(fs.readFileSync(path.join(POLICIES, f), "utf8"));
const one = read("meshsight.json");

// A pack of `n` rules in every location a rule may name (as the bench's larger pack).
function bigPack(n) {
  const locations = [["path", "query"], ["headers"], ["params", "body"], ["multipart", "inflated", "base64"],
    ["path", "query", "params", "headers", "body", "multipart", "inflated", "base64"]];
  return Array.from({ length: n }, (_, i) => ({
    id: `stack-${i}`,
    name: `stack rule ${i}`,
    category: `stack_${i % 10}`,
    severity: "medium",
    references: ["stack"],
    in: locations[i % locations.length],
    match: i % 3 === 0 ? { all: [[`ioc-${i}-a`], [`ioc-${i}-b`, `ioc-${i}-c`]] } : { any: [`indicator-${i}`, `/stack/${i}/x`] },
  }));
}

// JSON text nested `depth` levels: arrays, objects, or the two taking turns.
function nested(depth, kind, inner = '"${jndi:ldap://x/a}"') {
  let open = "", close = "";
  for (let i = 0; i < depth; i++) {
    const obj = kind === "object" || (kind === "mixed" && i % 2 === 1);
    open += obj ? '{"k":' : "[";
    close = (obj ? "}" : "]") + close;
  }
  return open + inner + close;
}

// The mirror and audit of the one pass (no allowlist: nothing is refused before its body),
// holding bodies, with the big pack in every location.
const scanning = {
  audit: one.audit,
  mirror: {
    ...one.mirror,
    hold_for_body: true,
    max_body_bytes: 65536,
    signatures: { ...one.mirror.signatures, packs: [{ pack: "stack", rules: bigPack(1000) }] },
  },
};

const configures = [["the one pass (bench)", one], ["the one pass, +1,000 rules in every location", scanning]];
// A section file is that section of a document; `meshsight--*.json` is a whole one.
const asDocument = (f, policy) => {
  const section = path.basename(f).split(/--|\./)[0];
  return section === "meshsight" ? policy : { [section]: policy };
};
for (const f of ["allowlist.json", "mirror.json", "audit.json"]) configures.push([`bench ${f}`, asDocument(f, read(f))]);
const extra = path.join(POLICIES, "extra");
if (fs.existsSync(extra)) {
  for (const f of fs.readdirSync(extra).sort()) {
    configures.push([`istio ${f}`, asDocument(f, JSON.parse(fs.readFileSync(path.join(extra, f), "utf8")))]);
  }
}
// Policies nested to the reader's limit where a list, a map and a free value are read; refused
// with their path (the depth is what counts here, the refusal is expected).
// `deep(n)` nests n levels below the n levels of the document around it: 127 in all.
const deep = (outer, kind) => JSON.parse(nested(127 - outer, kind, "1"));
const refused = [
  ["policy: allowlist rules nested 127", { allowlist: { rules: deep(2, "array") } }],
  ["policy: audit sink headers nested 127", { audit: { ...one.audit, sink: { http: { ...one.audit.sink.http, headers: deep(4, "object") } } } }],
  ["policy: mirror rules nested 127, mixed", { mirror: { ...one.mirror, rules: [deep(3, "mixed")] } }],
];
// Text past the parser's limit (JSON.stringify cannot write it): refused before any reading.
const refusedText = [["policy text nested 128 (past the limit)", `{"allowlist":${nested(128, "array", "1")}}`]];

const json = [["content-type", "application/json"]];
const gz = (s) => zlib.gzipSync(Buffer.from(s));
const df = (s) => zlib.deflateSync(Buffer.from(s));
const boundary = "----stackcheck";
function multipart(parts) {
  let s = "";
  for (const [name, value] of parts) s += `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  return s + `--${boundary}--\r\n`;
}
const mp = [["content-type", `multipart/form-data; boundary=${boundary}`]];
let lookups = "x";
for (let i = 0; i < 40; i++) lookups = "${lower:" + lookups + "}";
lookups = "${jndi:" + lookups + "}";
// name, whether the mirror copies it (the case reached the scan it is meant for), head, body.
const requests = [
  ["GET, no body", false, [], ""],
  ["JSON nested 127 (arrays)", true, json, nested(127, "array")],
  ["JSON nested 127 (objects)", true, json, nested(127, "object")],
  ["JSON nested 127 (mixed)", true, json, nested(127, "mixed")],
  ["JSON nested 128 (past the limit)", true, json, nested(128, "array")],
  ["JSON nested 5,000 (past the limit)", true, json, nested(5000, "mixed")],
  ["JSON, 2,000 members", false, json, JSON.stringify(Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, `v${i}`])))],
  ["Log4j lookups nested 40", true, [["content-type", "text/plain"]], lookups],
  ["gzip JSON nested 127", true, [...json, ["content-encoding", "gzip"]], gz(nested(127, "mixed"))],
  ["deflate JSON nested 127", true, [...json, ["content-encoding", "deflate"]], df(nested(127, "object"))],
  ["raw deflate text", true, [["content-type", "text/plain"], ["content-encoding", "deflate"]], zlib.deflateRawSync(Buffer.from("a=${jndi:ldap://x}".repeat(500)))],
  ["gzip bomb", false, [["content-type", "text/plain"], ["content-encoding", "gzip"]], gz("\0".repeat(4 << 20))],
  ["gzip broken", false, [["content-type", "text/plain"], ["content-encoding", "gzip"]], gz("x".repeat(10000)).subarray(0, 300)],
  ["multipart, 70 parts", false, mp, multipart(Array.from({ length: 70 }, (_, i) => [`f${i}`, `v${i}`]))],
  ["multipart, JSON nested 127 in a part", true, mp, multipart([["data", nested(127, "mixed")]])],
  ["gzip multipart", true, [...mp, ["content-encoding", "gzip"]], gz(multipart([["a", "${jndi:x}"], ["b", nested(127, "array")]]))],
  ["form, 2,000 pairs", false, [["content-type", "application/x-www-form-urlencoded"]], Array.from({ length: 2000 }, (_, i) => `p${i}=%2525${i}`).join("&")],
  ["base64 credentials", true, [["authorization", "Basic " + Buffer.from("${jndi:ldap://x}:pw").toString("base64")]], ""],
];
const requestHead = (headers, body) => [
  [":method", body.length ? "POST" : "GET"],
  // Nothing in the head matches a signature: the mirror then reads the body.
  [":path", "/api/v1/cart/item/?q=x%2520y&token=a"],
  [":authority", "shop.example.com"],
  [":scheme", "http"],
  ["user-agent", "curl/8.5.0"],
  ...(body.length ? [["content-length", String(body.length)]] : []),
  ...headers,
];

// --- the run ------------------------------------------------------------------------------------

const wasmBytes = fs.readFileSync(WASM);
const top = initialStackPointer(wasmBytes);
if (top !== STACK_SIZE) fail(`the module's stack is ${top} bytes, the Makefile asks for ${STACK_SIZE} (WASM_STACK_SIZE)`);
const module = new WebAssembly.Module(wasmBytes);

function canary(host) {
  host.bytes(0, top).fill(CANARY);
}
// How deep the stack went since the last canary: from the top to the lowest byte written.
function depth(host) {
  const stack = host.bytes(0, top);
  let low = 0;
  while (low < top && stack[low] === CANARY) low++;
  return top - low;
}

const rows = [];
function measure(name, run) {
  let d;
  try {
    d = run();
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) fail(`${name}: the module trapped (${e.message}); a stack overflow traps like this`);
    fail(`${name}: ${e.message}`);
  }
  rows.push([name, d]);
}

for (const [name, policy] of configures) {
  measure(`configure: ${name}`, () => {
    const host = new Host(module, JSON.stringify(policy));
    canary(host);
    if (!host.start()) throw new Error("configuration refused");
    return depth(host);
  });
}
for (const [name, policy] of [...refused, ...refusedText]) {
  measure(`configure: ${name}`, () => {
    const host = new Host(module, typeof policy === "string" ? policy : JSON.stringify(policy));
    canary(host);
    if (host.start()) throw new Error("a policy nested past every field was accepted");
    return depth(host);
  });
}
const host = new Host(module, JSON.stringify(scanning));
if (!host.start()) fail("the scanning policy was refused");
for (const [name, copied, headers, body] of requests) {
  const bytes = typeof body === "string" ? enc.encode(body) : new Uint8Array(body);
  measure(`request: ${name}`, () => {
    canary(host);
    const copies = host.request(requestHead(headers, bytes), bytes);
    if ((copies > 0) !== copied) throw new Error(`expected ${copied ? "a copy" : "no copy"}, the mirror sent ${copies}`);
    return depth(host);
  });
}

const limit = top / 2;
console.log(`${"case".padEnd(64)} ${"stack bytes".padStart(11)}`);
for (const [name, d] of rows) console.log(`${name.padEnd(64)} ${String(d).padStart(11)}`);
const [deepest, most] = rows.reduce((a, b) => (b[1] > a[1] ? b : a));
if (rows.some(([, d]) => d === 0)) fail("a case left the whole stack untouched: the canary does not see the stack");
if (most > limit) fail(`"${deepest}" used ${most} bytes of stack, over half of the ${top} the module has (WASM_STACK_SIZE in the Makefile): find the recursion, or raise the stack and say why`);
console.log(`wasm-stack: deepest "${deepest}", ${most} of ${top} bytes (the limit: half, ${limit})`);
