//! The byte scans of query redaction against the char-pattern splits they replaced.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const QUERIES: &[&str] = &[
    "",
    "a=1",
    "token=x",
    "a=1&token=x",
    "a=1;Token=x",
    "token",
    "token&a=1",
    "=x&token=",
    "a=1&&b=2;;token=3",
    "x=%74oken&%54OKEN=2",
    "tok%65n[]=1",
    "é=1&漢=😀;token=é",
    "a=1#token=x",
    "#",
    "&;=",
];

/// `any_secret_pair` answers what `split(['&', ';']).any(...)` answered.
#[test]
fn secret_pairs_are_found_as_the_char_set_split_found_them() {
    let secrets: NameSet = ["token".to_string()].into();
    for q in QUERIES {
        let query = q.split('#').next().unwrap_or("");
        let old = query.split(['&', ';']).any(|pair| {
            pair.split_once('=')
                .is_some_and(|(name, _)| is_secret_param(name, &secrets))
        });
        assert_eq!(any_secret_pair(query, &secrets), old, "{q:?}");
        assert_eq!(before(q, |b| b == b'#').0, query, "{q:?}");
    }
}

/// The masked query for each case, with the secret and without any secret configured.
#[test]
fn redacted_queries_keep_their_bytes_but_the_secret() {
    let secrets: NameSet = ["token".to_string()].into();
    assert_eq!(
        redacted_query("a=1&token=x", &secrets),
        "a=1&token=REDACTED"
    );
    assert_eq!(
        redacted_query("a=1;Token=x#f", &secrets),
        "a=1;Token=REDACTED"
    );
    assert_eq!(redacted_query("token&a=1", &secrets), "token&a=1");
    assert_eq!(redacted_query("a=1#token=x", &secrets), "a=1");
    assert!(matches!(
        redacted_query("a=1&b=2", &secrets),
        Cow::Borrowed("a=1&b=2")
    ));
    assert!(matches!(
        redacted_query("token=x", &NameSet::new()),
        Cow::Borrowed("token=x")
    ));
}
