use super::*;
use crate::audit::{sample_verdict, HttpExchange};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn sampling_points_are_fixed_values() {
    // Pinned (values from an independent Python implementation of FNV-1a + SplitMix64's
    // finalizer) so that a change of hash, which would split decisions between sidecars running
    // different versions, cannot go unnoticed.
    assert_eq!(stable_hash(b"req-1"), 731_977_614_612_919_186);
    assert_eq!(stable_hash(b""), 0xf52a_15e9_a9b5_e89b);
    let a = sample_point("req-1");
    assert!((0.0..1.0).contains(&a));
    assert_eq!(a, sample_point("req-1"));
    assert_ne!(a, sample_point("req-2"));
}

#[test]
fn samples_nest_a_request_in_the_f_sample_is_in_every_larger_one() {
    let fractions = [0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 1.0];
    for i in 0..2_000 {
        let id = format!("{i:08x}-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
        for (k, f) in fractions.iter().enumerate() {
            if sampled(Some(&id), *f) {
                for g in &fractions[k..] {
                    assert!(sampled(Some(&id), *g), "{id}: in {f} but not in {g}");
                }
            }
        }
        assert!(!sampled(Some(&id), 0.0), "fraction 0 samples nothing");
        assert!(sampled(Some(&id), 1.0), "fraction 1 samples everything");
    }
}

#[test]
fn a_request_the_mirror_samples_is_in_every_audit_sample_at_least_as_large() {
    let exchange = |id: &str| {
        let mut ex = HttpExchange::from_request_headers(vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), "/".to_string()),
            ("x-request-id".to_string(), id.to_string()),
        ]);
        ex.status = Some(200);
        ex
    };
    let mut mirrored = 0;
    let mut audited_only = 0;
    for i in 0..5_000 {
        let id = format!("req-{i}");
        let ex = exchange(&id);
        for (f, g) in [(0.1, 0.1), (0.1, 0.3), (0.25, 0.5), (0.5, 0.5)] {
            let audited = sample_verdict(&ex, g).is_recorded();
            if sampled(Some(&id), f) {
                mirrored += 1;
                assert!(audited, "{id}: mirrored at {f}, not audited at {g}");
            } else if audited {
                audited_only += 1;
            }
            // Same point, same side of the same fraction.
            assert_eq!(sampled(Some(&id), g), audited, "{id} at {g}");
        }
    }
    // Both sides of the property are exercised.
    assert!(
        mirrored > 1_000 && audited_only > 500,
        "{mirrored} {audited_only}"
    );
}

#[test]
fn a_missing_or_empty_request_id_is_never_sampled() {
    for f in [0.0, 0.5, 1.0] {
        assert!(!sampled(None, f));
        assert!(!sampled(Some(""), f));
    }
}

#[test]
fn in_sample_covers_the_whole_key_range() {
    assert!(!in_sample(u64::MAX, 0.999_999));
    assert!(in_sample(u64::MAX, 1.0));
    assert!(in_sample(0, 0.000_001));
    assert!(!in_sample(0, 0.0));
    assert!(!in_sample(0, -1.0));
    assert!(!in_sample(0, f64::NAN));
    assert_eq!(key_point(0), 0.0);
    assert!(key_point(u64::MAX) < 1.0);
    assert_eq!(sample_point("req-1"), key_point(stable_hash(b"req-1")));
}
