//! The one proxy-wasm ABI 0.2.1 call meshsight makes without the SDK.
//!
//! The SDK's `hostcalls::get_map_bytes` turns the host's serialized header map into a
//! `Vec<(String, Vec<u8>)>`: two allocations and two copies per header, on every request. The
//! request head is read once per request by every job, so meshsight keeps the host's buffer as
//! it is and indexes it (`meshsight_policy::headers::HeaderBlock::from_wire`). This crate is
//! the only place that touches the ABI directly; it holds the module's only `unsafe` (the
//! native test host, which implements the ABI, is the workspace's other).

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// `proxy_status_t` Ok.
const STATUS_OK: u32 = 0;

/// Header map types (`proxy_map_type_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MapType {
    /// The request's headers.
    HttpRequestHeaders = 0,
    /// The request's trailers.
    HttpRequestTrailers = 1,
    /// The response's headers.
    HttpResponseHeaders = 2,
    /// The response's trailers.
    HttpResponseTrailers = 3,
}

/// The header map `map` exactly as the host serialized it (pair count, lengths, then each name
/// and value NUL-terminated); empty when the host has no such map or refuses the call, never
/// a panic (the SDK panics on an unexpected status).
pub fn header_map_wire(map: MapType) -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes at most one pointer and one size through the two out-pointers,
    // which point at live locals.
    #[allow(unsafe_code)]
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    if status != STATUS_OK || data.is_null() {
        return Vec::new();
    }
    // SAFETY: the host allocated `data` by calling the module's `proxy_on_memory_allocate`
    // with `size` (the proxy-wasm SDK's export: a `Box<[MaybeUninit<u8>]>` of exactly `size`
    // bytes from the global allocator) and filled all of it; ownership passes to the module,
    // which is how the SDK's own `get_map_bytes` takes it.
    #[allow(unsafe_code)]
    unsafe {
        Vec::from_raw_parts(data, size, size)
    }
}
