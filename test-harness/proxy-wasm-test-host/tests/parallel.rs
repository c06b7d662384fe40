//! Hosts started at the same moment on many threads, as cargo's parallel tests do. The SDK's
//! `set_log_level` installs its global logger behind a racy check, so this binary holds this
//! single test: the first `register()` calls in the process all happen here, concurrently.

mod probe;

use std::sync::{Arc, Barrier};

use probe::{start, Script};
use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

#[test]
fn hosts_started_concurrently_all_register_and_log() {
    let threads = 32;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|n| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let host = start(Script {
                    configure: Some(Box::new(move |_| {
                        hostcalls::log(LogLevel::Info, &format!("thread {n}")).unwrap();
                        true
                    })),
                    ..Script::default()
                });
                host.logs_containing("thread")
            })
        })
        .collect();
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join().unwrap(), vec![format!("thread {n}")]);
    }
}
