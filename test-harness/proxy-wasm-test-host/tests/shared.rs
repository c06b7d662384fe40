//! Host functions: `proxy_get_shared_data`, `proxy_set_shared_data`,
//! `proxy_register_shared_queue`, `proxy_resolve_shared_queue`, `proxy_enqueue_shared_queue`,
//! `proxy_dequeue_shared_queue`; and `on_queue_ready` delivery after the current callback.

mod probe;

use probe::{probe, slot, start, Script};
use proxy_wasm::traits::Context;
use proxy_wasm::types::Action;
use proxy_wasm_test_host::Status;

#[test]
fn proxy_get_shared_data_returns_value_and_cas_or_none() {
    let seen = slot::<Vec<(Option<Vec<u8>>, Option<u32>)>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            seen_in.borrow_mut().push(ctx.get_shared_data("budget"));
            seen_in.borrow_mut().push(ctx.get_shared_data("missing"));
            Action::Continue
        })),
        ..Script::default()
    });
    host.set_shared_data("budget", "10");
    let (_, cas) = host.shared_data("budget").unwrap();
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert_eq!(
        *seen.borrow(),
        vec![(Some(b"10".to_vec()), Some(cas)), (None, None)]
    );
}

#[test]
fn proxy_set_shared_data_checks_cas() {
    let seen = slot::<Vec<Result<(), Status>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            let (_, cas) = ctx.get_shared_data("k");
            let mut seen = seen_in.borrow_mut();
            // Fresh CAS: accepted; the same CAS again is now stale.
            seen.push(ctx.set_shared_data("k", Some(b"v2"), cas));
            seen.push(ctx.set_shared_data("k", Some(b"v3"), cas));
            // No CAS: always accepted.
            seen.push(ctx.set_shared_data("k", Some(b"v4"), None));
            Action::Continue
        })),
        ..Script::default()
    });
    host.set_shared_data("k", "v1");
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert_eq!(
        *seen.borrow(),
        vec![Ok(()), Err(Status::CasMismatch), Ok(())]
    );
    assert_eq!(host.shared_data("k").unwrap().0, b"v4".to_vec());
}

#[test]
fn shared_data_cas_increases_with_every_write() {
    let mut host = start(Script::default());
    host.set_shared_data("a", "1");
    let first = host.shared_data("a").unwrap().1;
    host.set_shared_data("a", "2");
    let second = host.shared_data("a").unwrap().1;
    assert!(first > 0 && second > first, "{first} {second}");
}

fn queue_script(
    ready: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
    enqueue_count: usize,
) -> Script {
    let in_headers = ready.clone();
    Script {
        configure: Some(Box::new(|root| {
            root.register_shared_queue("records");
            true
        })),
        queue_ready: Some(Box::new({
            let ready = ready.clone();
            move |root, queue_id| {
                let mut items = Vec::new();
                while let Ok(Some(item)) = root.dequeue_shared_queue(queue_id) {
                    items.push(String::from_utf8_lossy(&item).into_owned());
                }
                ready
                    .borrow_mut()
                    .push(format!("ready {queue_id}: {}", items.join(",")));
            }
        })),
        request_headers: Some(Box::new(move |ctx, _, _| {
            let id = ctx.resolve_shared_queue("", "records").unwrap();
            for n in 0..enqueue_count {
                ctx.enqueue_shared_queue(id, Some(format!("r{n}").as_bytes()))
                    .unwrap();
            }
            in_headers.borrow_mut().push("headers returned".to_string());
            Action::Continue
        })),
        ..Script::default()
    }
}

#[test]
fn proxy_register_shared_queue_returns_a_stable_id() {
    let ids = slot::<Vec<u32>>();
    let ids_in = ids.clone();
    let _host = start(Script {
        configure: Some(Box::new(move |root| {
            let a = root.register_shared_queue("q1");
            let b = root.register_shared_queue("q2");
            let again = root.register_shared_queue("q1");
            ids_in.borrow_mut().extend([a, b, again]);
            true
        })),
        ..Script::default()
    });
    let ids = ids.borrow();
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[0], ids[2]);
}

#[test]
fn proxy_resolve_shared_queue_finds_by_vm_id_and_name() {
    let seen = slot::<Vec<Option<u32>>>();
    let seen_in = seen.clone();
    let _host = probe(Script {
        configure: Some(Box::new(move |root| {
            let id = root.register_shared_queue("q");
            let mut seen = seen_in.borrow_mut();
            seen.push(Some(id));
            seen.push(root.resolve_shared_queue("meshsight", "q"));
            seen.push(root.resolve_shared_queue("other_vm", "q"));
            seen.push(root.resolve_shared_queue("meshsight", "nope"));
            true
        })),
        ..Script::default()
    })
    .vm_id("meshsight")
    .start()
    .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen[1], seen[0]);
    assert_eq!(seen[2..], [None, None]);
}

#[test]
fn proxy_enqueue_shared_queue_delivers_on_queue_ready_after_the_callback() {
    let events = slot::<Vec<String>>();
    let mut host = start(queue_script(events.clone(), 2));
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    // Both enqueues happened inside on_request_headers; on_queue_ready ran after it returned
    // (the first one drained both items, the second found the queue empty).
    let queue = 1;
    assert_eq!(
        *events.borrow(),
        vec![
            "headers returned".to_string(),
            format!("ready {queue}: r0,r1"),
            format!("ready {queue}: "),
        ]
    );
    assert_eq!(host.shared_queue("records"), Some(vec![]));
}

#[test]
fn proxy_enqueue_shared_queue_to_an_unknown_queue_is_not_found() {
    let seen = slot::<Vec<Result<(), Status>>>();
    let seen_in = seen.clone();
    let mut host = start(Script {
        request_headers: Some(Box::new(move |ctx, _, _| {
            seen_in
                .borrow_mut()
                .push(ctx.enqueue_shared_queue(77, Some(b"x")));
            Action::Continue
        })),
        ..Script::default()
    });
    let id = host.new_http_stream();
    host.request_headers(id, &[], true);
    assert_eq!(*seen.borrow(), vec![Err(Status::NotFound)]);
}

#[test]
fn proxy_dequeue_shared_queue_empty_is_none_and_unknown_is_not_found() {
    let seen = slot::<Vec<Result<Option<Vec<u8>>, Status>>>();
    let seen_in = seen.clone();
    let _host = start(Script {
        configure: Some(Box::new(move |root| {
            let id = root.register_shared_queue("q");
            let mut seen = seen_in.borrow_mut();
            seen.push(root.dequeue_shared_queue(id));
            root.enqueue_shared_queue(id, Some(b"item")).unwrap();
            seen.push(root.dequeue_shared_queue(id));
            seen.push(root.dequeue_shared_queue(id + 100));
            true
        })),
        ..Script::default()
    });
    assert_eq!(
        *seen.borrow(),
        vec![Ok(None), Ok(Some(b"item".to_vec())), Err(Status::NotFound)]
    );
}

#[test]
fn test_side_enqueue_delivers_at_once() {
    let events = slot::<Vec<String>>();
    let mut host = start(queue_script(events.clone(), 0));
    assert!(host.enqueue_shared_queue("records", "from-another-vm"));
    assert!(!host.enqueue_shared_queue("unregistered", "x"));
    assert_eq!(
        *events.borrow(),
        vec!["ready 1: from-another-vm".to_string()]
    );
}
