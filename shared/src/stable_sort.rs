//! One stable sort for the whole crate, so that the module carries a few hundred bytes per use
//! rather than std's sort: each `sort_by`/`sort_by_key` instantiated for a new type or
//! comparison costs the module 5–7 KB of Wasm, compiled by V8 in every sidecar.
//!
//! A bottom-up merge sort: O(n log n) comparisons whatever the input (some of the lists sorted
//! per request come from a hostile body), one scratch buffer of the list's length, equal items
//! in their original order.

/// Sorts `items` by `less` (a strict "comes before"), keeping equal items in their order.
pub fn stable_sort_by<T: Copy>(items: &mut Vec<T>, less: impl Fn(&T, &T) -> bool) {
    let mut merged: Vec<T> = Vec::with_capacity(items.len());
    let mut width = 1;
    while width < items.len() {
        merged.clear();
        for run in items.chunks(2 * width) {
            let (left, right) = run.split_at(width.min(run.len()));
            let (mut l, mut r) = (left.iter().peekable(), right.iter().peekable());
            while let (Some(&a), Some(&b)) = (l.peek(), r.peek()) {
                // Only a right item strictly before the left one goes first: stable.
                if less(b, a) {
                    merged.push(*b);
                    r.next();
                } else {
                    merged.push(*a);
                    l.next();
                }
            }
            merged.extend(l);
            merged.extend(r);
        }
        std::mem::swap(items, &mut merged);
        width *= 2;
    }
}

/// [`stable_sort_by`] for lists of positions, the comparison called through `dyn`: one copy
/// for every configure-time sort of positions (policy maps, a pack's literals, the automaton's
/// patterns) rather than one per comparison, at a call per comparison that configuration can
/// afford (the per-request sorts keep their own copy).
pub fn stable_sort_positions(items: &mut Vec<u32>, less: &dyn Fn(u32, u32) -> bool) {
    stable_sort_by(items, |a, b| less(*a, *b));
}

#[cfg(test)]
mod tests {
    use super::stable_sort_by;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn sorts_like_std_stable_sort_and_keeps_equal_items_in_order() {
        // Deterministic pseudo-random lists of (key, original index) with many equal keys.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in (0..70).chain([255, 256, 257, 1000]) {
            let mut items: Vec<(u8, usize)> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed % 7) as u8, i)
                })
                .collect();
            let mut expected = items.clone();
            expected.sort_by_key(|p| p.0);
            stable_sort_by(&mut items, |a, b| a.0 < b.0);
            assert_eq!(items, expected, "length {len}");
        }
    }

    #[test]
    fn sorted_and_reversed_input() {
        let mut up: Vec<u32> = (0..513).collect();
        stable_sort_by(&mut up, |a, b| a < b);
        assert!(up.windows(2).all(|w| w[0] < w[1]));
        let mut down: Vec<u32> = (0..513).rev().collect();
        stable_sort_by(&mut down, |a, b| a < b);
        assert_eq!(down, up);
    }
}
