//! Native test and example binaries link two sets of proxy-wasm callbacks: the module's own
//! (`meshsight_host_abi::export_callbacks!`, expanded in `src/lib.rs`) and the proxy-wasm
//! SDK's, which comes with the native test host (`proxy-wasm-test-host`, shared with the
//! workspace's SDK-based filters). rustc keeps every
//! exported symbol of every linked crate, so the two `proxy_on_*` sets would clash. The linker
//! is told to take the first definition: the module's rlib comes before the SDK's on the link
//! line (a crate before its dependencies' dependencies), so the test host drives the module's
//! own callbacks, the ones Envoy calls. Were the SDK's ever taken instead, every test would
//! fail loudly: the SDK's dispatcher knows no meshsight context. The .wasm is not affected.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_FAMILY").as_deref() != Ok("wasm") {
        for kind in ["tests", "examples"] {
            println!("cargo:rustc-link-arg-{kind}=-Wl,--allow-multiple-definition");
        }
    }
}
