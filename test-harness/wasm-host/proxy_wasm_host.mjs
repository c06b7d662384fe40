// A proxy-wasm ABI 0.2.1 host for Node's V8 (the engine Envoy runs Wasm in), shared by the
// scripts that run the shipped meshsight.wasm outside Envoy:
// - test-harness/bench/v8-profile/profile.mjs: the module's own time per request (`make v8-profile`);
// - test-harness/wasm-stack/stack.mjs: the deepest stack it needs (`make wasm-stack`, in `make test`).
//
// The host answers every call meshsight imports from memory, the way Envoy answers it:
// properties and header maps as Envoy serializes them, buffers copied into memory the module
// allocates (`proxy_on_memory_allocate`), tokens for callouts. What each answer is (which
// properties, which headers, which bodies) and what a script records of the calls is the
// script's: it subclasses `ProxyWasmHost` and overrides the hooks below. Each script drives the
// request lifecycle it needs itself.

export const enc = new TextEncoder();
export const dec = new TextDecoder();

// An integer property as Envoy returns it: 8 little-endian bytes.
export function u64(n) {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(n));
  return b;
}

// `--name value` and `--flag` arguments as an object (`{ name: "value", flag: true }`).
export function parseArgs(argv) {
  return Object.fromEntries(
    argv.reduce((acc, a, i, all) => {
      if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]?.startsWith("--") ? true : all[i + 1] ?? true]);
      return acc;
    }, []),
  );
}

// A header map as the ABI serializes it: the pair count, each pair's two lengths, then each
// name and value followed by a NUL.
export function serialize(pairs) {
  const parts = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  let size = 4 + parts.length * 8;
  for (const [k, v] of parts) size += k.length + v.length + 2;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, parts.length, true);
  let off = 4;
  for (const [k, val] of parts) {
    v.setUint32(off, k.length, true);
    v.setUint32(off + 4, val.length, true);
    off += 8;
  }
  for (const [k, val] of parts) {
    out.set(k, off);
    off += k.length + 1;
    out.set(val, off);
    off += val.length + 1;
  }
  return out;
}

// The host. Hooks a script overrides (each has a default that answers "nothing"):
// - `property(key)`: a property's bytes, or undefined (`key`: the path's parts joined by NUL);
// - `setProperty(pathPtr, pathSize, dataPtr, dataSize)`: raw, so that a script that keeps
//   nothing pays nothing (`this.key(...)` and `this.bytes(...)` read the arguments);
// - `headerMap(type)`: a map's `[name, value]` pairs; `serializedMap(type)` its wire form;
// - `buffer(type)`: a buffer's bytes (7: the plugin configuration), or undefined;
// - `httpCall(upstreamPtr, upstreamSize)`: the token of a callout the module dispatched;
// - `now()`: the clock, ns; `log(level, ptr, size)`; `localReply()`;
// - `wrapImport(name, f)`: to wrap every import (e.g. to count the calls).
export class ProxyWasmHost {
  constructor(module, config) {
    this.config = enc.encode(config);
    const env = {
      proxy_log: (level, ptr, size) => (this.log(level, ptr, size), 0),
      proxy_get_log_level: (ret) => (this.view().setUint32(ret, 2, true), 0),
      proxy_set_tick_period_milliseconds: () => 0,
      proxy_get_current_time_nanoseconds: (ret) => (this.view().setBigUint64(ret, this.now(), true), 0),
      proxy_get_buffer_bytes: (type, start, max, retPtr, retSize) => {
        const data = this.buffer(type);
        if (data === undefined) return 1;
        return this.give(data.subarray(start, start + (max >>> 0)), retPtr, retSize);
      },
      proxy_set_buffer_bytes: () => 0,
      proxy_get_property: (pathPtr, pathSize, retPtr, retSize) => {
        const v = this.property(this.key(pathPtr, pathSize));
        return v === undefined ? 1 : this.give(v, retPtr, retSize);
      },
      proxy_set_property: (pathPtr, pathSize, dataPtr, dataSize) => (this.setProperty(pathPtr, pathSize, dataPtr, dataSize), 0),
      proxy_get_header_map_pairs: (type, retPtr, retSize) => this.give(this.serializedMap(type), retPtr, retSize),
      proxy_get_header_map_value: (type, keyPtr, keySize, retPtr, retSize) => {
        const key = this.str(keyPtr, keySize);
        const hit = this.headerMap(type).find(([k]) => k === key);
        return hit ? this.give(enc.encode(hit[1]), retPtr, retSize) : 1;
      },
      proxy_set_header_map_pairs: () => 0,
      proxy_add_header_map_value: () => 0,
      proxy_replace_header_map_value: () => 0,
      proxy_remove_header_map_value: () => 0,
      proxy_define_metric: (type, namePtr, nameSize, ret) => {
        this.metrics.push(this.str(namePtr, nameSize));
        this.view().setUint32(ret, this.metrics.length, true);
        return 0;
      },
      proxy_increment_metric: () => 0,
      proxy_record_metric: () => 0,
      proxy_get_metric: () => 1,
      proxy_send_local_response: () => (this.localReply(), 0),
      proxy_http_call: (upstreamPtr, upstreamSize, c, d, e, f, g, h, timeout, ret) => {
        this.view().setUint32(ret, this.httpCall(upstreamPtr, upstreamSize), true);
        return 0;
      },
      proxy_call_foreign_function: () => 0,
      proxy_set_effective_context: () => 0,
      proxy_continue_stream: () => 0,
      proxy_close_stream: () => 0,
      proxy_done: () => 0,
      proxy_get_status: () => 1,
      proxy_get_shared_data: () => 1,
      proxy_set_shared_data: () => 0,
      proxy_register_shared_queue: () => 0,
      proxy_resolve_shared_queue: () => 1,
      proxy_enqueue_shared_queue: () => 0,
      proxy_dequeue_shared_queue: () => 7,
      proxy_grpc_call: () => 12,
      proxy_grpc_stream: () => 12,
      proxy_grpc_send: () => 12,
      proxy_grpc_cancel: () => 12,
      proxy_grpc_close: () => 12,
    };
    for (const [name, f] of Object.entries(env)) env[name] = this.wrapImport(name, f);
    const wasi = {
      // Deterministic "random" bytes: runs repeat.
      random_get: (ptr, len) => {
        const b = this.bytes(ptr, len);
        for (let i = 0; i < len; i++) b[i] = (i * 131 + 7) & 0xff;
        return 0;
      },
      environ_get: () => 0,
      environ_sizes_get: (a, b) => (this.view().setUint32(a, 0, true), this.view().setUint32(b, 0, true), 0),
      fd_write: () => 0,
      proc_exit: (c) => {
        throw new Error("proc_exit " + c);
      },
    };
    this.metrics = [];
    this.instance = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasi });
    this.x = this.instance.exports;
  }

  // --- hooks ---
  property() {
    return undefined;
  }
  setProperty() {}
  headerMap() {
    return [];
  }
  serializedMap(type) {
    return serialize(this.headerMap(type));
  }
  buffer(type) {
    return type === 7 ? this.config : undefined;
  }
  httpCall() {
    return 1;
  }
  now() {
    return 1795993200000000000n;
  }
  log() {}
  localReply() {}
  wrapImport(name, f) {
    return f;
  }

  // --- memory ---
  view() {
    return new DataView(this.x.memory.buffer);
  }
  bytes(ptr, size) {
    return new Uint8Array(this.x.memory.buffer, ptr, size);
  }
  str(ptr, size) {
    return dec.decode(this.bytes(ptr, size));
  }
  // A property path as the module passes it (parts joined by NUL, maybe one trailing NUL).
  key(ptr, size) {
    const key = this.str(ptr, size);
    return key.endsWith("\0") ? key.slice(0, -1) : key;
  }
  // Hands `data` to the module the way Envoy does: into memory the module allocates.
  give(data, retPtr, retSize) {
    const ptr = this.x.proxy_on_memory_allocate(data.length);
    this.bytes(ptr, data.length).set(data);
    const v = this.view();
    v.setUint32(retPtr, ptr, true);
    v.setUint32(retSize, data.length, true);
    return 0;
  }

  // The root context (id 1) started and configured: whether the configuration was accepted.
  configure() {
    this.x._initialize?.();
    this.x.proxy_on_context_create(1, 0);
    if (!this.x.proxy_on_vm_start(1, 0)) throw new Error("vm start refused");
    return this.x.proxy_on_configure(1, this.config.length) !== 0;
  }
}
