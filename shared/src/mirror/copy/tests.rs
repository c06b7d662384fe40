use super::*;
use crate::headers::HeaderBlock;
use crate::mirror::delivery::{ANSWER_GRACE_NANOS, BACKOFF_INITIAL_NANOS};
use crate::mirror::Peer;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const HEADER: &str = r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}}}"#;
const HEADER_HOLD: &str =
    r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"hold_for_body":true}"#;
const DISPATCH: &str = r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}}}"#;
const LOG4SHELL: &[u8] = br#"{"note":"${jndi:ldap://e/a}"}"#;

fn policy(json: &str) -> MirrorPolicy {
    MirrorPolicy::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

/// A request as the adapter holds it: the head it read once, and the host's body buffer.
struct Stream {
    method: &'static str,
    path: String,
    headers: HeaderBlock,
    copy: MirrorCopy,
    /// What the host has buffered while the request is held.
    buffered: Vec<u8>,
}

impl Stream {
    fn get(path: &str) -> Stream {
        Stream {
            method: "GET",
            path: path.to_string(),
            headers: [
                (":method", "GET"),
                (":path", path),
                (":authority", "shop.example.com"),
            ]
            .into_iter()
            .collect(),
            copy: MirrorCopy::new(),
            buffered: Vec::new(),
        }
    }

    fn post(path: &str, content_type: &str) -> Stream {
        let mut s = Stream::get(path);
        s.method = "POST";
        s.headers = s
            .headers
            .iter()
            .map(|(n, v)| (n, if n == ":method" { "POST" } else { v }))
            .collect();
        s.header("content-type", content_type)
    }

    fn header(mut self, name: &str, value: &str) -> Stream {
        self.headers.push(name, value);
        self
    }

    fn request(&self) -> MirrorRequest<'_> {
        MirrorRequest {
            method: self.method,
            path: &self.path,
            authority: "shop.example.com",
            headers: &self.headers,
            peer: Peer::default(),
            normalized: None,
        }
    }
}

/// One worker: its policy, shared state and clock.
struct Worker {
    policy: MirrorPolicy,
    shared: MirrorWorker,
    now: u64,
}

impl Worker {
    fn new(json: &str) -> Worker {
        let policy = policy(json);
        let shared = MirrorWorker::new(&policy);
        Worker {
            policy,
            shared,
            now: 1_700_000_000_000_000_000,
        }
    }

    fn cx(&mut self) -> CopyContext<'_> {
        CopyContext {
            policy: &self.policy,
            worker: &mut self.shared,
            clock: Clock::at(self.now),
        }
    }

    fn hits(&self, s: &Stream) -> SignatureHits {
        let mut hits = self.policy.new_hits();
        self.policy.scan_head(&s.request(), &mut hits);
        hits
    }

    fn head(&mut self, s: &mut Stream, end_of_stream: bool) -> Step {
        let hits = self.hits(s);
        let mut copy = std::mem::take(&mut s.copy);
        let step = copy.head(&mut self.cx(), &s.request(), hits, end_of_stream);
        s.copy = copy;
        step
    }

    fn denied(&mut self, s: &mut Stream, end_of_stream: bool) -> Step {
        let hits = self.hits(s);
        let mut copy = std::mem::take(&mut s.copy);
        let step = copy.denied(&mut self.cx(), &s.request(), hits, end_of_stream);
        s.copy = copy;
        step
    }

    /// A body chunk as the host reports it: while held, the buffer so far; else the chunk.
    /// `None` when the state machine does not want it.
    fn body(&mut self, s: &mut Stream, chunk: &[u8], end_of_stream: bool) -> Option<Step> {
        let (size, bytes) = if s.copy.holding() {
            s.buffered.extend_from_slice(chunk);
            (s.buffered.len(), s.buffered.clone())
        } else {
            (chunk.len(), chunk.to_vec())
        };
        let wanted = s.copy.body_to_read(size)?;
        let mut copy = std::mem::take(&mut s.copy);
        let step = copy.body(
            &mut self.cx(),
            &s.request(),
            size,
            &bytes[..wanted],
            end_of_stream,
        );
        s.copy = copy;
        Some(step)
    }

    fn trailers(&mut self, s: &mut Stream) -> Step {
        let mut copy = std::mem::take(&mut s.copy);
        let step = copy.trailers(&mut self.cx(), &s.request());
        s.copy = copy;
        step
    }

    fn ended(&mut self, s: &mut Stream) -> Step {
        let mut copy = std::mem::take(&mut s.copy);
        let step = copy.stream_ended(&mut self.cx(), &s.request());
        s.copy = copy;
        step
    }

    /// What the root context would send on its next tick, each reported sent.
    fn send(&mut self) -> Vec<DispatchCopy> {
        let copies = self.shared.deliveries.take_queue();
        for (token, c) in (1..).zip(&copies) {
            self.shared.deliveries.sent(c.target, token, self.now);
        }
        copies
    }
}

fn set_header(name: &str, value: &str) -> CopyAction {
    CopyAction::SetDecisionHeader {
        name: name.into(),
        value: value.into(),
    }
}

fn queued(target: TargetId, arm_tick: bool) -> CopyAction {
    CopyAction::Queued { target, arm_tick }
}

fn decision(step: &Step) -> &MirrorDecision {
    step.decision()
        .unwrap_or_else(|| panic!("no decision in {step:?}"))
}

/// The actions other than the final record.
fn effects(step: &Step) -> Vec<CopyAction> {
    step.actions
        .iter()
        .filter(|a| !matches!(a, CopyAction::Record { .. }))
        .cloned()
        .collect()
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn summary(d: &MirrorDecision) -> (bool, Option<&str>, MirrorReason, Option<&str>) {
    (d.mirrored, d.target.as_deref(), d.reason, d.rule.as_deref())
}

// ---- header target ----

#[test]
fn a_header_target_selected_at_the_head_gets_the_decision_header() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header","header":"x-soc"}},
            "rules":[{"name":"admin","request":{"paths":[{"prefix":"/admin"}]},"action":{"type":"always"}}]}"#,
    );
    let mut s = Stream::get("/admin/users");
    let step = w.head(&mut s, true);
    assert_eq!(step.flow, Flow::Continue);
    assert_eq!(effects(&step), vec![set_header("x-soc", "ids")]);
    assert_eq!(
        summary(decision(&step)),
        (true, Some("ids"), MirrorReason::Rule, Some("admin"))
    );
    assert!(matches!(
        step.actions.last(),
        Some(CopyAction::Record {
            target: Some(0),
            ..
        })
    ));
    assert!(w.send().is_empty(), "the route copies, not the filter");
    // Nothing more happens for this request.
    assert!(!s.copy.reading_body());
    assert_eq!(w.ended(&mut s), Step::new(Flow::Continue));

    let mut benign = Stream::get("/shop");
    let step = w.head(&mut benign, true);
    assert_eq!(effects(&step), vec![]);
    assert_eq!(
        summary(decision(&step)),
        (false, None, MirrorReason::NotSelected, None)
    );
}

#[test]
fn a_head_signature_on_a_request_with_a_body_is_decided_at_once() {
    let mut w = Worker::new(HEADER_HOLD);
    let mut s = Stream::post("/static/../../etc/passwd", "text/plain");
    let step = w.head(&mut s, false);
    assert_eq!(
        step.flow,
        Flow::Continue,
        "the body cannot change it: no hold"
    );
    assert_eq!(
        effects(&step),
        vec![set_header("x-meshsight-mirror", "ids")]
    );
    assert_eq!(decision(&step).signatures, vec!["path_traversal"]);
    assert_eq!(s.copy.body_to_read(10), None);
    assert!(w.body(&mut s, LOG4SHELL, true).is_none());
}

// ---- dispatch target ----

#[test]
fn a_dispatch_target_gets_a_queued_copy_that_arms_the_tick_once() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    let mut first = Stream::get("/a").header("x-request-id", "r-1");
    let step = w.head(&mut first, true);
    assert_eq!(effects(&step), vec![queued(0, true)]);
    assert_eq!(
        summary(decision(&step)),
        (true, Some("ids"), MirrorReason::Rule, Some("all"))
    );
    let mut second = Stream::get("/b");
    assert_eq!(effects(&w.head(&mut second, true)), vec![queued(0, false)]);
    let sent = w.send();
    assert_eq!(sent.len(), 2);
    let h = &sent[0].headers;
    assert_eq!(header_of(h, ":path"), vec!["/a"]);
    assert_eq!(header_of(h, "x-request-id"), vec!["r-1"]);
    assert_eq!(header_of(h, "x-meshsight-mirror-target"), vec!["ids"]);
    assert_eq!(header_of(h, "x-meshsight-mirror-reason"), vec!["rule"]);
    assert_eq!(header_of(h, "x-meshsight-mirror-rule"), vec!["all"]);
    assert!(sent[0].body.is_empty());
    // The queue was emptied: the next copy arms the tick again.
    let mut third = Stream::get("/c");
    assert_eq!(effects(&w.head(&mut third, true)), vec![queued(0, true)]);
}

/// Runs `head` on a fresh stream with a clock that counts its reads; the count and the step.
fn head_counting_clock(w: &mut Worker, s: &mut Stream) -> (usize, Step) {
    let reads = std::cell::Cell::new(0);
    let now = w.now;
    let read = || {
        reads.set(reads.get() + 1);
        now
    };
    let hits = w.hits(s);
    let mut copy = std::mem::take(&mut s.copy);
    let mut cx = CopyContext {
        policy: &w.policy,
        worker: &mut w.shared,
        clock: Clock::reading(&read),
    };
    let step = copy.head(&mut cx, &s.request(), hits, true);
    s.copy = copy;
    (reads.get(), step)
}

#[test]
fn the_clock_is_read_once_for_a_copy_and_never_for_a_request_nothing_selects() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},
            "rules":[{"name":"admin","request":{"paths":[{"prefix":"/admin"}]},"action":{"type":"always"}}]}"#,
    );
    let (reads, step) = head_counting_clock(&mut w, &mut Stream::get("/catalog"));
    assert_eq!(decision(&step).reason, MirrorReason::NotSelected);
    assert_eq!(reads, 0, "no rate cap or delivery to time");
    // Selected: the rate cap and the delivery both need now, and share one read.
    let (reads, step) = head_counting_clock(&mut w, &mut Stream::get("/admin/users"));
    assert_eq!(effects(&step), vec![queued(0, true)]);
    assert_eq!(reads, 1);
}

#[test]
fn a_dispatch_copy_waits_for_the_body_not_the_request() {
    let mut w = Worker::new(DISPATCH);
    let mut s = Stream::post(
        "/login?x=../../etc/passwd",
        "application/x-www-form-urlencoded",
    );
    let step = w.head(&mut s, false);
    assert_eq!(step, Step::new(Flow::Continue), "nothing decided yet");
    assert!(s.copy.reading_body() && !s.copy.holding());
    let step = w.body(&mut s, b"u=a", false).unwrap_or_else(|| panic!());
    assert_eq!(step, Step::new(Flow::Continue));
    let step = w.body(&mut s, b"&p=b", true).unwrap_or_else(|| panic!());
    assert_eq!(effects(&step), vec![queued(0, true)]);
    let d = decision(&step);
    assert_eq!((d.mirrored, d.reason), (true, MirrorReason::Signature));
    let sent = w.send();
    assert_eq!(sent[0].body, b"u=a&p=b");
    assert!(header_of(&sent[0].headers, "x-meshsight-mirror-body-truncated").is_empty());
}

#[test]
fn without_max_body_bytes_a_dispatch_copy_goes_at_the_head_without_the_body() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},"max_body_bytes":0,
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    let mut s = Stream::post("/api", "application/json");
    let step = w.head(&mut s, false);
    assert_eq!(effects(&step), vec![queued(0, true)]);
    assert!(decision(&step).mirrored);
    assert!(w.body(&mut s, LOG4SHELL, true).is_none(), "bodies ignored");
    assert!(w.send()[0].body.is_empty());
}

#[test]
fn the_body_is_cut_at_max_body_bytes_and_the_copy_says_so() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},"max_body_bytes":24}"#,
    );
    let mut s = Stream::post("/api", "text/plain");
    assert_eq!(w.head(&mut s, false), Step::new(Flow::Continue));
    assert_eq!(s.copy.body_to_read(20), Some(20));
    let step = w
        .body(&mut s, b"x=${jndi:ldap://e/a}", false)
        .unwrap_or_else(|| panic!());
    assert_eq!(step, Step::new(Flow::Continue));
    assert_eq!(s.copy.body_to_read(15), Some(4), "only the room left");
    // 35 bytes seen >= 24: decided before the end of the stream.
    let step = w
        .body(&mut s, b" and more bytes", false)
        .unwrap_or_else(|| panic!());
    assert_eq!(
        effects(&step),
        vec![CopyAction::BodyTruncated, queued(0, true)]
    );
    assert_eq!(decision(&step).signatures, vec!["log4shell"]);
    assert_eq!(s.copy.body_read(), b"x=${jndi:ldap://e/a} and");
    let sent = w.send();
    assert_eq!(sent[0].body, b"x=${jndi:ldap://e/a} and");
    assert_eq!(
        header_of(&sent[0].headers, "x-meshsight-mirror-body-truncated"),
        vec!["true"]
    );
    // Later chunks are not wanted; an indicator past the limit is not seen.
    assert!(w.body(&mut s, b"${jndi:", true).is_none());
}

// ---- hold_for_body ----

#[test]
fn hold_for_body_holds_until_the_body_is_read_then_sets_the_header() {
    let mut w = Worker::new(HEADER_HOLD);
    let mut s = Stream::post("/xmlrpc.php", "text/xml");
    let step = w.head(&mut s, false);
    assert_eq!(step, Step::new(Flow::Hold));
    assert!(s.copy.holding());
    let step = w
        .body(&mut s, b"<methodCall><methodName>system.mul", false)
        .unwrap_or_else(|| panic!());
    assert_eq!(step, Step::new(Flow::Hold));
    let step = w
        .body(&mut s, b"ticall</methodName></methodCall>", true)
        .unwrap_or_else(|| panic!());
    assert_eq!(step.flow, Flow::Continue);
    assert_eq!(
        effects(&step),
        vec![set_header("x-meshsight-mirror", "ids")]
    );
    let d = decision(&step);
    assert_eq!(
        (d.mirrored, d.reason, d.signatures.clone()),
        (
            true,
            MirrorReason::Signature,
            vec!["wordpress_xmlrpc".into()]
        )
    );
    assert!(!s.copy.holding());

    // A benign body: held until read, then let go, not mirrored.
    let mut s = Stream::post("/api", "application/json");
    assert_eq!(w.head(&mut s, false).flow, Flow::Hold);
    let step = w
        .body(&mut s, br#"{"q":"shoes"}"#, true)
        .unwrap_or_else(|| panic!());
    assert_eq!(step.flow, Flow::Continue);
    assert_eq!(effects(&step), vec![]);
    assert!(!decision(&step).mirrored);
}

#[test]
fn a_held_request_is_let_go_once_max_body_bytes_are_buffered() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"max_body_bytes":32,"hold_for_body":true}"#,
    );
    let mut s = Stream::post("/api", "text/plain");
    assert_eq!(w.head(&mut s, false).flow, Flow::Hold);
    assert_eq!(
        s.copy.body_to_read(40),
        Some(32),
        "the held buffer, up to the limit"
    );
    let step = w
        .body(&mut s, &[b'a'; 20], false)
        .unwrap_or_else(|| panic!());
    assert_eq!(step.flow, Flow::Hold);
    let step = w
        .body(&mut s, &[b'b'; 20], false)
        .unwrap_or_else(|| panic!());
    assert_eq!(step.flow, Flow::Continue);
    assert_eq!(effects(&step), vec![CopyAction::BodyTruncated]);
    assert!(!decision(&step).mirrored);
    assert_eq!(s.copy.body_read().len(), 32);
    assert!(w.body(&mut s, b"${jndi:ldap://e}", true).is_none());
}

#[test]
fn a_body_only_hit_without_holding_goes_by_http_call_even_to_a_header_target() {
    let mut w = Worker::new(HEADER);
    let mut s = Stream::post("/xmlrpc.php", "text/xml");
    assert_eq!(w.head(&mut s, false), Step::new(Flow::Continue));
    w.body(&mut s, b"<methodName>system.", false);
    let step = w
        .body(&mut s, b"multicall</methodName>", true)
        .unwrap_or_else(|| panic!());
    assert_eq!(
        effects(&step),
        vec![queued(0, true)],
        "too late for the route"
    );
    assert!(decision(&step).mirrored);
    let sent = w.send();
    assert_eq!(sent[0].body, b"<methodName>system.multicall</methodName>");
    assert_eq!(
        header_of(&sent[0].headers, "x-meshsight-mirror-signatures"),
        vec!["wordpress_xmlrpc"]
    );
}

// ---- a body signature after a rule decision ----

#[test]
fn a_body_signature_upgrades_a_rule_copy_to_the_same_target() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},
            "rules":[{"name":"orders","request":{"paths":[{"prefix":"/orders"}]},"action":{"type":"always"}}]}"#,
    );
    let mut s = Stream::post("/orders", "application/json");
    let step = w.head(&mut s, false);
    assert_eq!(step.flow, Flow::Continue);
    assert_eq!(
        step.actions,
        vec![set_header("x-meshsight-mirror", "ids")],
        "the rule acts while the route can still mirror; the decision waits for the body"
    );
    let step = w.body(&mut s, LOG4SHELL, true).unwrap_or_else(|| panic!());
    assert_eq!(effects(&step), vec![], "the route's copy carries the body");
    let d = decision(&step);
    assert_eq!(
        (
            d.mirrored,
            d.reason,
            d.rule.as_deref(),
            d.signatures.clone()
        ),
        (
            true,
            MirrorReason::Signature,
            None,
            vec!["log4shell".into()]
        )
    );
    // A benign body keeps the rule decision.
    let mut s = Stream::post("/orders", "application/json");
    w.head(&mut s, false);
    let step = w
        .body(&mut s, br#"{"item":1}"#, true)
        .unwrap_or_else(|| panic!());
    assert_eq!(
        summary(decision(&step)),
        (true, Some("ids"), MirrorReason::Rule, Some("orders"))
    );
}

#[test]
fn a_body_signature_upgrades_a_waiting_dispatch_copy_without_a_second_one() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch","max_rps":1,"burst":1}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    let mut s = Stream::post("/api", "application/json");
    assert_eq!(w.head(&mut s, false), Step::new(Flow::Continue));
    let step = w.body(&mut s, LOG4SHELL, true).unwrap_or_else(|| panic!());
    assert_eq!(effects(&step), vec![queued(0, true)]);
    assert_eq!(decision(&step).reason, MirrorReason::Signature);
    let sent = w.send();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        header_of(&sent[0].headers, "x-meshsight-mirror-reason"),
        vec!["signature"]
    );
    assert!(header_of(&sent[0].headers, "x-meshsight-mirror-rule").is_empty());
    assert_eq!(sent[0].body, LOG4SHELL);
}

#[test]
fn a_body_signature_for_another_target_gets_its_own_copy_and_the_rule_copy_stands() {
    // The rule's copy goes by route (header), the signature's by HTTP call.
    let mut w = Worker::new(
        r#"{"targets":{"bulk":{"cluster":"bulk","delivery":"header"},
                       "ids":{"cluster":"sensor","delivery":"dispatch"}},
            "default_target":"ids",
            "rules":[{"name":"all","action":{"type":"always"},"target":"bulk"}]}"#,
    );
    let bulk = 0;
    let ids = 1;
    let mut s = Stream::post("/api", "application/json");
    let step = w.head(&mut s, false);
    assert_eq!(step.actions, vec![set_header("x-meshsight-mirror", "bulk")]);
    let step = w.body(&mut s, LOG4SHELL, true).unwrap_or_else(|| panic!());
    assert_eq!(effects(&step), vec![queued(ids, true)]);
    assert_eq!(
        summary(decision(&step)),
        (true, Some("ids"), MirrorReason::Signature, None)
    );
    let sent = w.send();
    assert_eq!(sent.iter().map(|c| c.target).collect::<Vec<_>>(), vec![ids]);
    assert_ne!(bulk, ids);

    // Both by HTTP call: the rule's copy first (as decided at the head), then the signature's.
    let mut w = Worker::new(
        r#"{"targets":{"bulk":{"cluster":"bulk","delivery":"dispatch"},
                       "ids":{"cluster":"sensor","delivery":"dispatch"}},
            "default_target":"ids",
            "rules":[{"name":"all","action":{"type":"always"},"target":"bulk"}]}"#,
    );
    let mut s = Stream::post("/api", "application/json");
    assert_eq!(w.head(&mut s, false), Step::new(Flow::Continue));
    let step = w.body(&mut s, LOG4SHELL, true).unwrap_or_else(|| panic!());
    assert_eq!(effects(&step), vec![queued(bulk, true), queued(ids, false)]);
    assert_eq!(decision(&step).reason, MirrorReason::Signature);
    let sent = w.send();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        header_of(&sent[0].headers, "x-meshsight-mirror-rule"),
        vec!["all"]
    );
    assert_eq!(
        header_of(&sent[1].headers, "x-meshsight-mirror-reason"),
        vec!["signature"]
    );
    assert!(sent.iter().all(|c| c.body == LOG4SHELL));
}

// ---- the stream ends early ----

#[test]
fn a_client_reset_mid_body_decides_on_what_was_read() {
    // Held: the header can no longer be set, the copy of what was read goes by HTTP call.
    let mut w = Worker::new(HEADER_HOLD);
    let mut s = Stream::post("/api", "text/plain");
    assert_eq!(w.head(&mut s, false).flow, Flow::Hold);
    assert_eq!(
        w.body(&mut s, b"${jndi:", false).map(|s| s.flow),
        Some(Flow::Hold)
    );
    let step = w.ended(&mut s);
    assert_eq!(effects(&step), vec![queued(0, true)]);
    let d = decision(&step);
    assert_eq!(
        (d.mirrored, d.signatures.clone()),
        (true, vec!["log4shell".into()])
    );
    assert_eq!(w.send()[0].body, b"${jndi:");
    assert_eq!(w.ended(&mut s), Step::new(Flow::Continue), "decided once");

    // A waiting dispatch copy goes with the part that was read.
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    let mut s = Stream::post("/api", "text/plain");
    w.head(&mut s, false);
    w.body(&mut s, b"half a bo", false);
    let step = w.ended(&mut s);
    assert_eq!(effects(&step), vec![queued(0, true)]);
    assert_eq!(
        summary(decision(&step)),
        (true, Some("ids"), MirrorReason::Rule, Some("all"))
    );
    assert_eq!(w.send()[0].body, b"half a bo");
}

#[test]
fn trailers_end_the_body() {
    let mut w = Worker::new(HEADER_HOLD);
    let mut s = Stream::post("/api", "text/plain");
    assert_eq!(w.head(&mut s, false).flow, Flow::Hold);
    w.body(&mut s, b"${jndi:rmi://e/x}", false);
    let step = w.trailers(&mut s);
    assert_eq!(step.flow, Flow::Continue);
    assert_eq!(
        effects(&step),
        vec![set_header("x-meshsight-mirror", "ids")]
    );
    assert_eq!(decision(&step).signatures, vec!["log4shell"]);
    assert_eq!(w.trailers(&mut s), Step::new(Flow::Continue));
}

// ---- rate cap and delivery limits ----

#[test]
fn over_the_rate_cap_a_request_is_rate_limited_and_not_copied() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header","max_rps":1,"burst":1}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    assert!(decision(&w.head(&mut Stream::get("/"), true)).mirrored);
    let step = w.head(&mut Stream::get("/"), true);
    assert_eq!(effects(&step), vec![], "no header");
    assert_eq!(
        summary(decision(&step)),
        (false, Some("ids"), MirrorReason::RateLimited, Some("all"))
    );
    assert!(matches!(
        step.actions.last(),
        Some(CopyAction::Record {
            target: Some(0),
            ..
        })
    ));
    // A body signature found later asks the bucket again, still empty.
    let mut s = Stream::post("/api", "application/json");
    assert_eq!(w.head(&mut s, false).actions, vec![]);
    let step = w.body(&mut s, LOG4SHELL, true).unwrap_or_else(|| panic!());
    assert_eq!(effects(&step), vec![]);
    let d = decision(&step);
    assert_eq!(
        (d.mirrored, d.reason, d.signatures.clone()),
        (false, MirrorReason::RateLimited, vec!["log4shell".into()])
    );
    // One second later there is a token.
    w.now += 1_000_000_000;
    assert!(decision(&w.head(&mut Stream::get("/"), true)).mirrored);
}

#[test]
fn a_copy_that_cannot_go_is_recorded_unmirrored_with_its_reason() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch","max_in_flight":1,"timeout_ms":100}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    assert!(decision(&w.head(&mut Stream::get("/"), true)).mirrored);
    let step = w.head(&mut Stream::get("/"), true);
    assert_eq!(
        effects(&step),
        vec![CopyAction::Dropped {
            target: 0,
            refusal: Refusal::Busy
        }]
    );
    assert_eq!(
        summary(decision(&step)),
        (false, Some("ids"), MirrorReason::Rule, Some("all"))
    );
    // The call is never answered: after its timeout and the grace second it stops counting.
    assert_eq!(w.send().len(), 1);
    w.now += 100_000_000 + ANSWER_GRACE_NANOS;
    let step = w.head(&mut Stream::get("/"), true);
    assert_eq!(
        effects(&step),
        vec![CopyAction::Unconfirmed(1), queued(0, true)]
    );
    // A target that failed three times rests.
    let token = 1;
    assert_eq!(w.send().len(), 1);
    assert!(w.shared.deliveries.answered(token, false, w.now));
    for _ in 0..2 {
        w.shared.deliveries.refused(0, w.now);
    }
    let step = w.head(&mut Stream::get("/"), true);
    assert_eq!(
        effects(&step),
        vec![CopyAction::Dropped {
            target: 0,
            refusal: Refusal::Resting
        }]
    );
    assert!(!decision(&step).mirrored);
    w.now += BACKOFF_INITIAL_NANOS;
    assert!(decision(&w.head(&mut Stream::get("/"), true)).mirrored);
}

// ---- denied by the allowlist ----

#[test]
fn a_denied_request_with_a_signature_is_copied_by_http_call_even_to_a_header_target() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    let mut s = Stream::post("/app?class.module.classLoader.URLs%5B0%5D=0", "text/plain")
        .header("content-length", "12");
    let step = w.denied(&mut s, false);
    assert_eq!(step.flow, Flow::Continue);
    assert_eq!(effects(&step), vec![queued(0, true)], "no decision header");
    let d = decision(&step);
    assert_eq!(
        (d.mirrored, d.reason, d.signatures.clone()),
        (true, MirrorReason::Signature, vec!["spring4shell".into()])
    );
    // The body is not read; the copy says it is missing.
    assert!(!s.copy.reading_body());
    assert!(w.body(&mut s, LOG4SHELL, true).is_none());
    assert_eq!(w.ended(&mut s), Step::new(Flow::Continue));
    let sent = w.send();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].body.is_empty());
    let h = &sent[0].headers;
    assert_eq!(
        header_of(h, "x-meshsight-mirror-body-truncated"),
        vec!["true"]
    );
    assert!(header_of(h, "content-length").is_empty());
    assert_eq!(header_of(h, "x-meshsight-mirror-reason"), vec!["signature"]);

    // Without a body nothing is missing.
    let mut s = Stream::get("/static/..%2f..%2fetc/passwd");
    assert!(decision(&w.denied(&mut s, true)).mirrored);
    assert!(header_of(&w.send()[0].headers, "x-meshsight-mirror-body-truncated").is_empty());
}

#[test]
fn rules_and_samples_never_select_a_denied_request() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    let step = w.denied(&mut Stream::get("/admin"), true);
    assert_eq!(effects(&step), vec![]);
    assert_eq!(
        summary(decision(&step)),
        (false, None, MirrorReason::NotSelected, None)
    );
    assert!(w.send().is_empty());
}

#[test]
fn denied_copies_take_tokens_from_the_rate_cap() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header","max_rps":1,"burst":1}}}"#,
    );
    let attack = || Stream::get("/").header("user-agent", "${jndi:ldap://e/a}");
    assert!(decision(&w.denied(&mut attack(), true)).mirrored);
    let step = w.denied(&mut attack(), true);
    assert_eq!(effects(&step), vec![]);
    assert_eq!(
        summary(decision(&step)),
        (false, Some("ids"), MirrorReason::RateLimited, None)
    );
    assert_eq!(w.send().len(), 1);
}

#[test]
fn copy_denied_false_records_the_signature_without_a_copy() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},"copy_denied":false}"#,
    );
    let mut s = Stream::get("/").header("user-agent", "${jndi:ldap://e/a}");
    let step = w.denied(&mut s, true);
    assert_eq!(effects(&step), vec![]);
    let d = decision(&step);
    assert_eq!(
        (
            d.mirrored,
            d.target.as_deref(),
            d.reason,
            d.signatures.clone()
        ),
        (
            false,
            None,
            MirrorReason::NotSelected,
            vec!["log4shell".into()]
        )
    );
    assert!(w.send().is_empty());
}

#[test]
fn copy_denied_is_on_by_default_and_a_wrong_type_names_its_path() {
    assert!(policy(HEADER).copy_denied());
    assert!(!policy(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"copy_denied":false}"#
    )
    .copy_denied());
    let err = MirrorPolicy::from_json(
        br#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"copy_denied":"no"}"#,
    )
    .map(|_| ())
    .unwrap_err();
    assert_eq!(err.path, "copy_denied");
    assert!(err.reason.contains("expected a boolean"), "{err}");
}

// ---- inputs out of order ----

#[test]
fn inputs_before_the_head_or_after_the_decision_change_nothing() {
    let mut w = Worker::new(DISPATCH);
    let mut s = Stream::get("/static/../../etc/passwd");
    assert_eq!(s.copy.body_to_read(5), None);
    assert_eq!(w.trailers(&mut s), Step::new(Flow::Continue));
    assert_eq!(w.ended(&mut s), Step::new(Flow::Continue));
    assert!(decision(&w.head(&mut s, true)).mirrored);
    assert_eq!(w.head(&mut s, true), Step::new(Flow::Continue), "one head");
    assert_eq!(w.denied(&mut s, true), Step::new(Flow::Continue));
    assert_eq!(w.send().len(), 1);
}

// ---- the copy's headers ----

#[test]
fn dispatch_headers_drop_what_must_not_reach_the_sensor_and_say_why() {
    let p = policy(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"},
                       "bulk":{"cluster":"b","delivery":"header","header":"x-soc"}},
            "default_target":"ids"}"#,
    );
    let mut s = Stream::post("/login?x=1", "application/x-www-form-urlencoded");
    for (n, v) in [
        ("authorization", "Bearer secret"),
        ("Cookie", "session=secret"),
        ("proxy-authorization", "Basic secret"),
        ("content-length", "7"),
        ("transfer-encoding", "chunked"),
        ("connection", "keep-alive"),
        ("te", "trailers"),
        ("x-meshsight-mirror", "ids"),
        ("x-soc", "bulk"),
        ("X-Meshsight-Mirror-Reason", "client-says-benign"),
        ("x-request-id", "r-1"),
        ("x-meshsight-mirrored", "kept: not our prefix"),
    ] {
        s = s.header(n, v);
    }
    let d = MirrorDecision {
        mirrored: true,
        target: Some("ids".into()),
        reason: MirrorReason::Signature,
        rule: None,
        signatures: vec!["log4shell".into(), "acme".into()],
        signature_rules: vec![],
        findings: Vec::new(),
    };
    let ids = &p.targets()[1];
    assert_eq!(ids.name, "ids");
    let h = dispatch_headers(&p, ids, &s.request(), &d, true);
    let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            ":method",
            ":path",
            ":authority",
            "content-type",
            "x-request-id",
            "x-meshsight-mirrored",
            "x-meshsight-mirror-request-id",
            "x-meshsight-mirror-target",
            "x-meshsight-mirror-reason",
            "x-meshsight-mirror-signatures",
            "x-meshsight-mirror-body-truncated",
            "x-meshsight-mirror-decision",
        ]
    );
    assert_eq!(header_of(&h, ":authority"), vec!["shop.example.com"]);
    assert_eq!(
        header_of(&h, "x-meshsight-mirror-signatures"),
        vec!["log4shell,acme"]
    );
    assert_eq!(
        header_of(&h, "x-meshsight-mirror-body-truncated"),
        vec!["true"]
    );
}

#[test]
fn dispatch_headers_keep_secrets_when_asked_and_replace_the_authority() {
    let p = policy(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch","include_secrets":true,"authority":"sensor.soc"}}}"#,
    );
    let s = Stream::get("/")
        .header("authorization", "Bearer t")
        .header("cookie", "s=1");
    let d = MirrorDecision {
        mirrored: true,
        target: Some("ids".into()),
        reason: MirrorReason::Sample,
        rule: Some("rest".into()),
        signatures: Vec::new(),
        signature_rules: vec![],
        findings: Vec::new(),
    };
    let h = dispatch_headers(&p, &p.targets()[0], &s.request(), &d, false);
    assert_eq!(header_of(&h, "authorization"), vec!["Bearer t"]);
    assert_eq!(header_of(&h, "cookie"), vec!["s=1"]);
    assert_eq!(header_of(&h, ":authority"), vec!["sensor.soc"]);
    assert_eq!(header_of(&h, "x-meshsight-mirror-reason"), vec!["sample"]);
    assert_eq!(header_of(&h, "x-meshsight-mirror-rule"), vec!["rest"]);
    assert!(header_of(&h, "x-meshsight-mirror-signatures").is_empty());
    assert!(header_of(&h, "x-meshsight-mirror-body-truncated").is_empty());
}

#[test]
fn dispatch_headers_carry_provenance_from_the_connection_never_from_the_client() {
    let p = policy(r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}}}"#);
    let s = Stream::get("/")
        .header("x-forwarded-for", "1.2.3.4")
        .header("X-Real-IP", "1.2.3.4")
        .header("forwarded", "for=1.2.3.4")
        .header("x-meshsight-mirror-source-address", "1.2.3.4")
        .header(
            "x-meshsight-mirror-source-principal",
            "spiffe://evil/ns/x/sa/y",
        )
        .header("x-request-id", "r-9");
    let mut request = s.request();
    request.peer = Peer::new(
        Some("10.1.2.3".parse().unwrap()),
        Some("spiffe://cluster.local/ns/shop/sa/web"),
    );
    let d = MirrorDecision {
        mirrored: true,
        target: Some("ids".into()),
        reason: MirrorReason::Signature,
        rule: None,
        signatures: vec!["log4shell".into()],
        signature_rules: Vec::new(),
        findings: Vec::new(),
    };
    let h = dispatch_headers(&p, &p.targets()[0], &request, &d, false);
    assert_eq!(header_of(&h, "x-forwarded-for"), vec!["10.1.2.3"]);
    assert!(header_of(&h, "x-real-ip").is_empty());
    assert!(header_of(&h, "forwarded").is_empty());
    assert_eq!(
        header_of(&h, "x-meshsight-mirror-source-address"),
        vec!["10.1.2.3"]
    );
    assert_eq!(
        header_of(&h, "x-meshsight-mirror-source-principal"),
        vec!["spiffe://cluster.local/ns/shop/sa/web"]
    );
    assert_eq!(
        header_of(&h, "x-meshsight-mirror-source-namespace"),
        vec!["shop"]
    );
    assert_eq!(header_of(&h, "x-meshsight-mirror-request-id"), vec!["r-9"]);
    assert_eq!(
        header_of(&h, "x-meshsight-mirror-claimed-forwarded-for"),
        vec!["1.2.3.4"]
    );
    assert_eq!(
        header_of(&h, "x-meshsight-mirror-reason"),
        vec!["signature"]
    );
    assert_eq!(
        header_of(&h, "x-meshsight-mirror-signatures"),
        vec!["log4shell"]
    );
}

#[test]
fn reason_names_are_the_json_ones() {
    for r in [
        MirrorReason::Signature,
        MirrorReason::Rule,
        MirrorReason::Sample,
        MirrorReason::NotSelected,
        MirrorReason::RateLimited,
    ] {
        let json = format!("\"{}\"", r.as_str());
        let read: MirrorReason = crate::ConfigError::parse_json(json.as_bytes()).unwrap();
        assert_eq!(read, r);
    }
}

#[test]
fn with_hold_for_body_a_denied_request_is_held_and_copied_with_its_body() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},"hold_for_body":true}"#,
    );
    let mut s = Stream::post("/login", "application/json");
    let step = w.denied(&mut s, false);
    assert_eq!(step.flow, Flow::Hold, "the reply waits for the body");
    assert!(step.decision().is_none());
    assert!(s.copy.holding());
    let step = w.body(&mut s, LOG4SHELL, true).expect("the body is wanted");
    assert_eq!(step.flow, Flow::Continue);
    let d = decision(&step);
    assert_eq!(
        (d.mirrored, d.reason, d.signatures.clone()),
        (true, MirrorReason::Signature, vec!["log4shell".into()])
    );
    let sent = w.send();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].body,
        LOG4SHELL.to_vec(),
        "the copy carries the body"
    );
    assert!(header_of(&sent[0].headers, "x-meshsight-mirror-body-truncated").is_empty());
}

#[test]
fn a_held_denied_request_without_an_indicator_is_not_copied() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},"hold_for_body":true,
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    let mut s = Stream::post("/login", "application/json");
    assert_eq!(w.denied(&mut s, false).flow, Flow::Hold);
    let step = w.body(&mut s, br#"{"user":"bob"}"#, true).expect("wanted");
    let d = decision(&step);
    assert!(!d.mirrored);
    assert_eq!(d.reason, MirrorReason::NotSelected);
    assert!(w.send().is_empty());
}

#[test]
fn copy_denied_off_never_holds_a_denied_request() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},"hold_for_body":true,"copy_denied":false}"#,
    );
    let mut s = Stream::post("/login", "application/json");
    let step = w.denied(&mut s, false);
    assert_eq!(step.flow, Flow::Continue);
    assert!(!decision(&step).mirrored);
}

#[test]
fn a_worker_that_stopped_holding_decides_a_denied_request_at_its_head() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},"hold_for_body":true}"#,
    );
    w.shared.may_hold = false;
    let mut s = Stream::post("/login", "application/json");
    let step = w.denied(&mut s, false);
    assert_eq!(step.flow, Flow::Continue, "the reply is not held back");
    assert!(!s.copy.holding());
    assert!(step.decision().is_some(), "decided on the head alone");
}

#[test]
fn a_worker_that_stopped_holding_lets_an_allowed_request_flow_while_reading_its_body() {
    let mut w = Worker::new(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"hold_for_body":true}"#,
    );
    w.shared.may_hold = false;
    let mut s = Stream::post("/login", "application/json");
    let step = w.head(&mut s, false);
    assert_eq!(step.flow, Flow::Continue);
    assert!(!s.copy.holding());
    assert!(
        s.copy.reading_body(),
        "the body is still scanned as it passes"
    );
}

/// What decoding found wrong reaches the recorded decision, copied or not: at the head (invalid
/// `Basic` credentials), after a held body (a malformed multipart form, a gzip stream cut
/// short), and beside a signature hit.
#[test]
fn decoding_findings_are_recorded_in_the_decision() {
    let mut w = Worker::new(HEADER_HOLD);
    let mut s = Stream::get("/admin").header("authorization", "Basic $$$not*base64$$$");
    let step = w.head(&mut s, true);
    let d = decision(&step);
    assert!(!d.mirrored);
    assert_eq!(d.findings, ["basic_credentials_invalid"]);

    let unclosed = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nok\r\n";
    let mut s = Stream::post("/upload", "multipart/form-data; boundary=b")
        .header("content-length", &unclosed.len().to_string());
    assert_eq!(w.head(&mut s, false).flow, Flow::Hold);
    let step = w.body(&mut s, unclosed, true).unwrap();
    assert_eq!(decision(&step).findings, ["multipart_malformed"]);
    assert_eq!(decision(&step).reason, MirrorReason::NotSelected);

    let gzip = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255, 0x4b, 0x4c];
    let mut s = Stream::post("/api", "application/json").header("content-encoding", "gzip");
    assert_eq!(w.head(&mut s, false).flow, Flow::Hold);
    let step = w.body(&mut s, &gzip, true).unwrap();
    assert_eq!(decision(&step).findings, ["body_encoding_broken"]);

    let mut s = Stream::post("/api", "multipart/form-data; boundary=b");
    w.head(&mut s, false);
    let attack = b"--b\r\nContent-Disposition: form-data; name=q\r\n\r\n${jndi:ldap://e/a}\r\n";
    let step = w.body(&mut s, attack, true).unwrap();
    let d = decision(&step);
    assert_eq!(
        (d.reason, d.signatures.as_slice(), d.findings.as_slice()),
        (
            MirrorReason::Signature,
            &["log4shell".to_string()][..],
            &["multipart_malformed".to_string()][..]
        )
    );

    let mut s = Stream::post("/api", "application/json");
    w.head(&mut s, false);
    let step = w.body(&mut s, br#"{"q":"shoes"}"#, true).unwrap();
    assert!(decision(&step).findings.is_empty());
}
