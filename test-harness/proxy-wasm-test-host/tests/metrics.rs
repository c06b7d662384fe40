//! Host functions: `proxy_define_metric`, `proxy_get_metric`, `proxy_record_metric`,
//! `proxy_increment_metric` (Envoy's semantics per metric type).

mod probe;

use probe::{slot, start, Script};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Action;
use proxy_wasm_test_host::{MetricType, Status};

#[test]
fn proxy_define_metric_returns_one_id_per_name_and_type() {
    let ids = slot::<Vec<u32>>();
    let ids_in = ids.clone();
    let host = start(Script {
        configure: Some(Box::new(move |_| {
            let mut ids = ids_in.borrow_mut();
            ids.push(
                hostcalls::define_metric(MetricType::Counter, "meshsight_probe_requests").unwrap(),
            );
            ids.push(
                hostcalls::define_metric(MetricType::Gauge, "meshsight_probe_inflight").unwrap(),
            );
            ids.push(
                hostcalls::define_metric(MetricType::Histogram, "meshsight_probe_bytes").unwrap(),
            );
            ids.push(
                hostcalls::define_metric(MetricType::Counter, "meshsight_probe_requests").unwrap(),
            );
            true
        })),
        ..Script::default()
    });
    let ids = ids.borrow();
    assert_eq!(ids[0], ids[3]);
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    assert_eq!(
        host.metrics(),
        vec![
            ("meshsight_probe_requests".to_string(), MetricType::Counter),
            ("meshsight_probe_inflight".to_string(), MetricType::Gauge),
            ("meshsight_probe_bytes".to_string(), MetricType::Histogram),
        ]
    );
    assert_eq!(host.counter("meshsight_probe_requests"), Some(0));
    assert_eq!(host.gauge("meshsight_probe_inflight"), Some(0));
    assert_eq!(host.histogram("meshsight_probe_bytes"), Some(vec![]));
    assert_eq!(host.counter("meshsight_probe_inflight"), None, "wrong type");
    assert_eq!(host.counter("undefined"), None);
}

#[test]
fn proxy_increment_metric_counts_requests_and_moves_gauges() {
    let results = slot::<Vec<Result<(), Status>>>();
    let results_in = results.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |_, _, _| {
            let counter = hostcalls::define_metric(MetricType::Counter, "c").unwrap();
            let gauge = hostcalls::define_metric(MetricType::Gauge, "g").unwrap();
            let histogram = hostcalls::define_metric(MetricType::Histogram, "h").unwrap();
            let mut r = results_in.borrow_mut();
            r.push(hostcalls::increment_metric(counter, 1));
            r.push(hostcalls::increment_metric(gauge, 5));
            r.push(hostcalls::increment_metric(gauge, -7));
            r.push(hostcalls::increment_metric(counter, -1));
            r.push(hostcalls::increment_metric(histogram, 1));
            r.push(hostcalls::increment_metric(9999, 1));
            Action::Continue
        })),
        ..Script::default()
    });
    for _ in 0..3 {
        let id = host.new_http_stream();
        host.request_headers(id, &[], true);
    }
    assert_eq!(host.counter("c"), Some(3));
    assert_eq!(host.gauge("g"), Some(-6));
    assert_eq!(
        results.borrow()[..6],
        [
            Ok(()),
            Ok(()),
            Ok(()),
            Err(Status::BadArgument),
            Err(Status::BadArgument),
            Err(Status::NotFound)
        ]
    );
}

#[test]
fn proxy_record_metric_adds_to_counters_sets_gauges_and_samples_histograms() {
    let results = slot::<Vec<Result<(), Status>>>();
    let results_in = results.clone();
    let host = start(Script {
        configure: Some(Box::new(move |_| {
            let counter = hostcalls::define_metric(MetricType::Counter, "c").unwrap();
            let gauge = hostcalls::define_metric(MetricType::Gauge, "g").unwrap();
            let histogram = hostcalls::define_metric(MetricType::Histogram, "h").unwrap();
            let mut r = results_in.borrow_mut();
            r.push(hostcalls::record_metric(counter, 4));
            r.push(hostcalls::record_metric(counter, 6));
            r.push(hostcalls::record_metric(gauge, 42));
            r.push(hostcalls::record_metric(gauge, 7));
            r.push(hostcalls::record_metric(histogram, 120));
            r.push(hostcalls::record_metric(histogram, 80));
            r.push(hostcalls::record_metric(12345, 1));
            true
        })),
        ..Script::default()
    });
    assert_eq!(host.counter("c"), Some(10));
    assert_eq!(host.gauge("g"), Some(7));
    assert_eq!(host.histogram("h"), Some(vec![120, 80]));
    assert_eq!(results.borrow().last(), Some(&Err(Status::NotFound)));
}

#[test]
fn proxy_get_metric_reads_counters_and_gauges() {
    let seen = slot::<Vec<Result<u64, Status>>>();
    let seen_in = seen.clone();
    let _host = start(Script {
        configure: Some(Box::new(move |_| {
            let counter = hostcalls::define_metric(MetricType::Counter, "c").unwrap();
            let gauge = hostcalls::define_metric(MetricType::Gauge, "g").unwrap();
            let histogram = hostcalls::define_metric(MetricType::Histogram, "h").unwrap();
            hostcalls::increment_metric(counter, 2).unwrap();
            hostcalls::increment_metric(gauge, 9).unwrap();
            let mut seen = seen_in.borrow_mut();
            seen.push(hostcalls::get_metric(counter));
            seen.push(hostcalls::get_metric(gauge));
            seen.push(hostcalls::get_metric(histogram));
            seen.push(hostcalls::get_metric(777));
            true
        })),
        ..Script::default()
    });
    assert_eq!(
        *seen.borrow(),
        vec![
            Ok(2),
            Ok(9),
            Err(Status::BadArgument),
            Err(Status::NotFound)
        ]
    );
}
