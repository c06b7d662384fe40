//! The plugin side of the ABI: the `proxy_on_*` entry points the SDK's dispatcher exports
//! (`#[no_mangle]` in proxy-wasm), which the host calls like Envoy calls into the VM.

use proxy_wasm::types::Action;

extern "C" {
    pub(crate) fn proxy_on_context_create(context_id: u32, root_context_id: u32);
    pub(crate) fn proxy_on_vm_start(context_id: u32, vm_configuration_size: usize) -> bool;
    pub(crate) fn proxy_on_configure(context_id: u32, plugin_configuration_size: usize) -> bool;
    pub(crate) fn proxy_on_done(context_id: u32) -> bool;
    pub(crate) fn proxy_on_log(context_id: u32);
    pub(crate) fn proxy_on_delete(context_id: u32);
    pub(crate) fn proxy_on_tick(context_id: u32);
    pub(crate) fn proxy_on_queue_ready(context_id: u32, queue_id: u32);
    pub(crate) fn proxy_on_request_headers(
        context_id: u32,
        num_headers: usize,
        end_of_stream: bool,
    ) -> Action;
    pub(crate) fn proxy_on_request_body(
        context_id: u32,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action;
    pub(crate) fn proxy_on_request_trailers(context_id: u32, num_trailers: usize) -> Action;
    pub(crate) fn proxy_on_response_headers(
        context_id: u32,
        num_headers: usize,
        end_of_stream: bool,
    ) -> Action;
    pub(crate) fn proxy_on_response_body(
        context_id: u32,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action;
    pub(crate) fn proxy_on_response_trailers(context_id: u32, num_trailers: usize) -> Action;
    pub(crate) fn proxy_on_http_call_response(
        context_id: u32,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    );
    pub(crate) fn proxy_on_grpc_receive_initial_metadata(
        context_id: u32,
        token_id: u32,
        headers: u32,
    );
    pub(crate) fn proxy_on_grpc_receive(context_id: u32, token_id: u32, response_size: usize);
    pub(crate) fn proxy_on_grpc_receive_trailing_metadata(
        context_id: u32,
        token_id: u32,
        trailers: u32,
    );
    pub(crate) fn proxy_on_grpc_close(context_id: u32, token_id: u32, status_code: u32);
}
