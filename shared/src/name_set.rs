//! A set of names (lowercase header and query parameter names, rule names): a sorted list
//! searched by halves.
//!
//! Why not `BTreeSet<String>`: it was the last B-tree left in the module, and a B-tree's insert,
//! search, iteration and drop for one key type cost about 4 KB of Wasm that every sidecar
//! compiles. The sets here are small (a policy's few recorded headers or secret parameters),
//! built once at configure, then only searched: a sorted list answers `contains` in as few
//! comparisons, from one allocation. Iteration is in name order, as the B-tree's was.

use std::fmt;

/// A set of names in name order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NameSet(Vec<String>);

impl NameSet {
    /// An empty set.
    pub fn new() -> NameSet {
        NameSet(Vec::new())
    }

    /// Adds `name`; `false` when it was already there (the set is unchanged).
    pub fn insert(&mut self, name: String) -> bool {
        match self.search(&name) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, name);
                true
            }
        }
    }

    /// Whether `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.search(name).is_ok()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The names in order.
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }

    fn search(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|n| n.as_str().cmp(name))
    }
}

/// As `BTreeSet`'s: `{"a", "b"}`.
impl fmt::Debug for NameSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.0).finish()
    }
}

impl FromIterator<String> for NameSet {
    fn from_iter<I: IntoIterator<Item = String>>(names: I) -> NameSet {
        let mut set = NameSet::new();
        for name in names {
            set.insert(name);
        }
        set
    }
}

impl<const N: usize> From<[String; N]> for NameSet {
    fn from(names: [String; N]) -> NameSet {
        names.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a NameSet {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::NameSet;
    use crate::test_rng::Rng;
    use std::collections::BTreeSet;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Against `BTreeSet<String>`, the type it replaced: the same answers to the same inserts
    /// and lookups, the same order, the same `Debug`.
    #[test]
    fn answers_as_a_btree_set_does() {
        let mut rng = Rng(19);
        for _ in 0..300 {
            let mut ours = NameSet::new();
            let mut theirs = BTreeSet::new();
            for _ in 0..rng.below(40) {
                let name = format!("n{}", rng.below(30));
                assert_eq!(ours.insert(name.clone()), theirs.insert(name));
            }
            for probe in 0..35 {
                let name = format!("n{probe}");
                assert_eq!(ours.contains(&name), theirs.contains(&name));
            }
            assert!(!ours.contains(""));
            assert_eq!(ours.len(), theirs.len());
            assert_eq!(ours.is_empty(), theirs.is_empty());
            assert!(ours.iter().eq(theirs.iter()));
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        }
    }
}
