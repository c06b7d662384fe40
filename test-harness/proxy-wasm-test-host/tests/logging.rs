//! Host functions: `proxy_log`, `proxy_get_log_level`, `proxy_get_current_time_nanoseconds`,
//! `proxy_set_tick_period_milliseconds`; plus start-up errors and one Host per thread.

mod probe;

use std::time::{Duration, UNIX_EPOCH};

use probe::{probe, slot, start, start_err, Script};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::Context;
use proxy_wasm_test_host::{Host, LogEntry, LogLevel, DEFAULT_TIME_NANOS};

#[test]
fn proxy_log_captures_level_and_message() {
    let host = start(Script {
        configure: Some(Box::new(|_| {
            hostcalls::log(LogLevel::Warn, "policy loaded: 3 rules").unwrap();
            hostcalls::log(LogLevel::Debug, "detail").unwrap();
            true
        })),
        ..Script::default()
    });
    assert_eq!(
        host.logs(),
        vec![
            LogEntry {
                level: LogLevel::Warn,
                message: "policy loaded: 3 rules".into()
            },
            LogEntry {
                level: LogLevel::Debug,
                message: "detail".into()
            },
        ]
    );
    assert_eq!(
        host.logs_containing("3 rules"),
        vec!["policy loaded: 3 rules"]
    );
    assert!(host.logs_containing("absent").is_empty());
}

#[test]
fn proxy_get_log_level_reports_configured_level() {
    let seen = slot::<Vec<LogLevel>>();
    let seen_in = seen.clone();
    let mut host = probe(Script {
        configure: Some(Box::new(move |_| {
            seen_in
                .borrow_mut()
                .push(hostcalls::get_log_level().unwrap());
            true
        })),
        request_headers: Some(Box::new({
            let seen = seen.clone();
            move |_, _, _| {
                seen.borrow_mut().push(hostcalls::get_log_level().unwrap());
                proxy_wasm::types::Action::Continue
            }
        })),
        ..Script::default()
    })
    .log_level(LogLevel::Warn)
    .start()
    .unwrap();
    host.set_log_level(LogLevel::Error);
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert_eq!(*seen.borrow(), vec![LogLevel::Warn, LogLevel::Error]);
}

#[test]
fn proxy_get_current_time_is_fixed_until_advanced() {
    let seen = slot::<Vec<u128>>();
    let seen_in = seen.clone();
    let mut host = probe(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            let now = ctx.get_current_time().duration_since(UNIX_EPOCH).unwrap();
            seen_in.borrow_mut().push(now.as_nanos());
            proxy_wasm::types::Action::Continue
        })),
        ..Script::default()
    })
    .time_nanos(5_000_000_000)
    .start()
    .unwrap();
    let id = host.new_http_stream();
    host.request_headers(id, &[], false);
    host.request_headers(id, &[], false);
    host.advance_time(Duration::from_millis(1500));
    host.request_headers(id, &[], true);
    assert_eq!(
        *seen.borrow(),
        vec![5_000_000_000, 5_000_000_000, 6_500_000_000]
    );
    assert_eq!(host.now_nanos(), 6_500_000_000);
}

#[test]
fn default_clock_starts_at_the_documented_time() {
    let host = start(Script::default());
    assert_eq!(host.now_nanos(), DEFAULT_TIME_NANOS);
}

#[test]
fn proxy_set_tick_period_enables_ticks_on_the_root() {
    let ticks = slot::<Vec<u32>>();
    let ticks_in = ticks.clone();
    let mut host = start(Script {
        configure: Some(Box::new(|root| {
            root_set_tick(root, Duration::from_millis(250));
            true
        })),
        tick: Some(Box::new(move |root| {
            ticks_in.borrow_mut().push(root.id);
            if ticks_in.borrow().len() == 2 {
                root_set_tick(root, Duration::ZERO);
            }
            true
        })),
        ..Script::default()
    });
    assert_eq!(host.tick_period(), Some(Duration::from_millis(250)));
    host.tick();
    host.tick();
    assert_eq!(host.tick_period(), None, "period 0 stops ticks");
    host.tick();
    assert_eq!(*ticks.borrow(), vec![host.root_context_id(); 2]);
}

fn root_set_tick(_root: &mut probe::ProbeRoot, period: Duration) {
    hostcalls::set_tick_period(period).unwrap();
}

#[test]
fn no_tick_without_a_period() {
    let ticks = slot::<u32>();
    let ticks_in = ticks.clone();
    let mut host = start(Script {
        tick: Some(Box::new(move |_| {
            *ticks_in.borrow_mut() += 1;
            true
        })),
        ..Script::default()
    });
    assert_eq!(host.tick_period(), None);
    host.tick();
    assert_eq!(*ticks.borrow(), 0);
}

#[test]
fn refused_configuration_is_a_start_error_with_the_logs() {
    let err = start_err(probe(Script {
        configure: Some(Box::new(|_| {
            hostcalls::log(LogLevel::Error, "rules[2].paths[0]: bad").unwrap();
            false
        })),
        ..Script::default()
    }));
    assert_eq!(err.callback(), "proxy_on_configure");
    assert_eq!(err.logs().len(), 1);
    assert!(err.to_string().contains("rules[2].paths[0]: bad"), "{err}");
    // The failed Host cleaned up: another one starts on this thread.
    let host = start(Script::default());
    assert!(host.logs().is_empty());
}

#[test]
fn refused_vm_start_is_a_start_error() {
    let err = start_err(probe(Script {
        vm_start: Some(Box::new(|_| false)),
        ..Script::default()
    }));
    assert_eq!(err.callback(), "proxy_on_vm_start");
    assert!(err.to_string().contains("logged nothing"), "{err}");
}

#[test]
fn hosts_run_one_after_another_on_a_thread() {
    for round in 0..3 {
        let mut host = start(Script::default());
        let id = host.new_http_stream();
        host.request_headers(id, &[(":path", "/")], true);
        assert_eq!(host.request_header_map(id).len(), 1, "round {round}");
    }
}

#[test]
#[should_panic(expected = "a Host is already live on this thread")]
fn a_second_live_host_on_a_thread_panics() {
    let _first = start(Script::default());
    let _second = Host::builder(probe::register).start();
}

#[test]
fn hosts_on_parallel_threads_are_independent() {
    let handles: Vec<_> = (0..4)
        .map(|n| {
            std::thread::spawn(move || {
                let host = start(Script {
                    configure: Some(Box::new(move |_| {
                        hostcalls::log(LogLevel::Info, &format!("thread {n}")).unwrap();
                        true
                    })),
                    ..Script::default()
                });
                host.logs()
            })
        })
        .collect();
    for (n, handle) in handles.into_iter().enumerate() {
        let logs = handle.join().unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].message, format!("thread {n}"));
    }
}

/// Run on its own by `test_host_log_echoes_to_stderr` (and as a plain test).
#[test]
fn logs_an_echo_marker() {
    let host = start(Script {
        configure: Some(Box::new(|_| {
            hostcalls::log(LogLevel::Info, "echo-marker-7f3a").unwrap();
            true
        })),
        ..Script::default()
    });
    assert_eq!(host.logs_containing("echo-marker-7f3a").len(), 1);
}

#[test]
fn test_host_log_echoes_to_stderr() {
    let run = |echo: Option<&str>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "logs_an_echo_marker", "--nocapture"]);
        cmd.env_remove("PROXY_WASM_TEST_HOST_LOG");
        if let Some(value) = echo {
            cmd.env("PROXY_WASM_TEST_HOST_LOG", value);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(Some("1")).contains("[Info] echo-marker-7f3a"));
    assert!(!run(None).contains("echo-marker-7f3a"));
    assert!(!run(Some("0")).contains("echo-marker-7f3a"));
}
