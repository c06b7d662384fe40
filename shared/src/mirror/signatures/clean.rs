//! Pieces recently found clean: a worker's memory of request pieces (a header line, a path, a
//! parameter) in which the automaton found no literal at all, in any view.
//!
//! Such a piece cannot contribute to any rule whatever the rest of the request is (rules hit
//! only through literals found in their pieces; conditions, names and anchors only filter
//! those), so scanning it again gives the same nothing. Most of a request head repeats from
//! request to request (user agent, accept headers, cookies and tokens within a session, the
//! path of a busy route), and the automaton walks every byte with a dependent load per byte,
//! while recognising a known piece costs a hash and a comparison of eight bytes at a time.
//!
//! The memory is a two-way set-associative table of whole pieces, compared byte for byte on
//! lookup: a hash collision can only cost a scan, never skip one, so no crafted input can make
//! a piece that carries a literal pass for a clean one. Its size is fixed: [`SLOTS`] pieces of
//! at most [`MAX_PIECE`] bytes, each slot's buffer reused once grown. Two ways, so that the two
//! dozen pieces of one request head rarely evict each other.

use super::pack::Locations;

/// Slots in the table (a power of two): [`SLOTS`] / 2 sets of two.
pub const SLOTS: usize = 512;
/// Longest piece remembered; longer ones are always scanned.
pub const MAX_PIECE: usize = 256;

/// One worker's clean pieces for one signature set: build a new one when the set changes.
#[derive(Debug, Clone)]
pub struct CleanPieces {
    slots: Vec<Slot>,
    /// Per set, the way to replace next (the one not found or filled last).
    victim: Vec<u8>,
    /// The buffer a scan writes header lines into, kept from request to request.
    line: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    /// What the bytes were scanned as (location bits, `+` read as space).
    kind: Option<(u16, bool)>,
    bytes: Vec<u8>,
}

impl Default for CleanPieces {
    fn default() -> Self {
        CleanPieces::new()
    }
}

impl CleanPieces {
    /// An empty table.
    pub fn new() -> CleanPieces {
        CleanPieces {
            slots: vec![Slot::default(); SLOTS],
            victim: vec![0; SLOTS / 2],
            line: Vec::new(),
        }
    }

    /// The worker's line buffer, for a scan to write header lines into (give it back with
    /// [`CleanPieces::put_line`]).
    pub(super) fn take_line(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.line)
    }

    /// Keeps `line` for the next scan.
    pub(super) fn put_line(&mut self, line: Vec<u8>) {
        self.line = line;
    }

    /// What the table knows of `raw` scanned at `locations` (with `+` as space or not): clean,
    /// or the set to remember it in once found clean. One hash per piece serves both.
    pub(super) fn look_up(
        &mut self,
        raw: &[u8],
        locations: Locations,
        plus_as_space: bool,
    ) -> Known {
        if raw.len() > MAX_PIECE {
            return Known::TooLong;
        }
        let kind = Some((locations.0, plus_as_space));
        let set = set_of(raw, locations, plus_as_space);
        for way in 0..2 {
            if self
                .slots
                .get(set * 2 + way)
                .is_some_and(|s| s.kind == kind && same_bytes(&s.bytes, raw))
            {
                if let Some(v) = self.victim.get_mut(set) {
                    *v = 1 - way as u8;
                }
                return Known::Clean;
            }
        }
        Known::Unseen(Set(set))
    }

    /// Remembers `raw` as clean at `locations` in `set` (from [`CleanPieces::look_up`] of the
    /// same piece), replacing the less recently used of the set.
    pub(super) fn remember(
        &mut self,
        Set(set): Set,
        raw: &[u8],
        locations: Locations,
        plus_as_space: bool,
    ) {
        let Some(victim) = self.victim.get_mut(set) else {
            return;
        };
        let way = usize::from(*victim);
        *victim = 1 - *victim;
        if let Some(slot) = self.slots.get_mut(set * 2 + way) {
            slot.kind = Some((locations.0, plus_as_space));
            slot.bytes.clear();
            slot.bytes.extend_from_slice(raw);
        }
    }

    /// Whether `raw`, scanned at `locations` (with `+` as space or not), was found clean.
    #[cfg(test)]
    pub(super) fn contains(
        &mut self,
        raw: &[u8],
        locations: Locations,
        plus_as_space: bool,
    ) -> bool {
        matches!(self.look_up(raw, locations, plus_as_space), Known::Clean)
    }

    /// Remembers `raw` as clean at `locations`, replacing the less recently used of its set.
    #[cfg(test)]
    pub(super) fn insert(&mut self, raw: &[u8], locations: Locations, plus_as_space: bool) {
        if let Known::Unseen(set) = self.look_up(raw, locations, plus_as_space) {
            self.remember(set, raw, locations, plus_as_space);
        }
    }
}

/// What [`CleanPieces::look_up`] knows of a piece.
pub(super) enum Known {
    /// Found clean before: no need to scan it.
    Clean,
    /// Not known clean; found clean by this scan, it goes in this set.
    Unseen(Set),
    /// Longer than [`MAX_PIECE`]: never remembered.
    TooLong,
}

/// The set of the table a piece belongs in.
pub(super) struct Set(usize);

/// Eight bytes of `raw` from `at`, little-endian, as far as there are bytes (zero past the
/// end): a word loop rather than `chunks_exact`, whose `next` stays a call per word at
/// opt-level "z".
#[inline(always)]
fn word_at(raw: &[u8], at: usize) -> u64 {
    match raw
        .get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        Some(w) => u64::from_le_bytes(w),
        None => {
            let mut word = 0u64;
            let mut shift = 0;
            let mut i = at;
            while let Some(b) = raw.get(i) {
                word |= u64::from(*b) << shift;
                shift += 8;
                i += 1;
            }
            word
        }
    }
}

/// Whether `a` and `b` are the same bytes, compared a word at a time.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut at = 0;
    while at < a.len() {
        if word_at(a, at) != word_at(b, at) {
            return false;
        }
        at += 8;
    }
    true
}

/// The set of a piece: a multiplicative hash of its bytes, eight at a time, and its kind.
fn set_of(raw: &[u8], locations: Locations, plus_as_space: bool) -> usize {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = (u64::from(locations.0) << 1 | u64::from(plus_as_space)) ^ raw.len() as u64;
    let mut at = 0;
    // Every whole word, then the rest zero-padded (a zero word when there is no rest): the
    // hash the `chunks_exact` loop computed, so that sets stay where they were.
    while at + 8 <= raw.len() {
        h = (h.rotate_left(5) ^ word_at(raw, at)).wrapping_mul(K);
        at += 8;
    }
    h = (h.rotate_left(5) ^ word_at(raw, at)).wrapping_mul(K);
    (h >> 32) as usize & (SLOTS / 2 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_exact_pieces_by_kind() {
        let mut clean = CleanPieces::new();
        let ua = b"user-agent: Mozilla/5.0 (X11; Linux x86_64)";
        assert!(!clean.contains(ua, Locations::HEADERS, false));
        clean.insert(ua, Locations::HEADERS, false);
        assert!(clean.contains(ua, Locations::HEADERS, false));
        // Same bytes scanned elsewhere, or with `+` read differently, are another piece.
        assert!(!clean.contains(ua, Locations::QUERY, false));
        assert!(!clean.contains(ua, Locations::HEADERS, true));
        // One byte different, or a prefix, is not the remembered piece.
        assert!(!clean.contains(
            b"user-agent: Mozilla/5.0 (X11; Linux x86_65)",
            Locations::HEADERS,
            false
        ));
        assert!(!clean.contains(&ua[..ua.len() - 1], Locations::HEADERS, false));
    }

    /// The hash as it was computed with `chunks_exact` (the oracle of the word loop).
    fn set_of_chunks(raw: &[u8], locations: Locations, plus_as_space: bool) -> usize {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = (u64::from(locations.0) << 1 | u64::from(plus_as_space)) ^ raw.len() as u64;
        let mut chunks = raw.chunks_exact(8);
        for chunk in &mut chunks {
            let word = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes);
            h = (h.rotate_left(5) ^ word).wrapping_mul(K);
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
        (h >> 32) as usize & (SLOTS / 2 - 1)
    }

    #[test]
    fn word_loops_hash_and_compare_as_the_chunk_loop_did() {
        let text: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        for len in 0..text.len() {
            let piece = &text[..len];
            for (loc, plus) in [(Locations::HEADERS, false), (Locations::QUERY, true)] {
                assert_eq!(
                    set_of(piece, loc, plus),
                    set_of_chunks(piece, loc, plus),
                    "{len}"
                );
            }
            assert!(same_bytes(piece, piece));
            for at in 0..len {
                let mut other = piece.to_vec();
                other[at] ^= 1;
                assert!(!same_bytes(piece, &other), "{len} {at}");
            }
            assert!(!same_bytes(piece, &text[..len + 1]));
        }
    }

    #[test]
    fn long_pieces_are_never_remembered() {
        let mut clean = CleanPieces::new();
        let long = vec![b'a'; MAX_PIECE + 1];
        clean.insert(&long, Locations::HEADERS, false);
        assert!(!clean.contains(&long, Locations::HEADERS, false));
        let fits = vec![b'a'; MAX_PIECE];
        clean.insert(&fits, Locations::HEADERS, false);
        assert!(clean.contains(&fits, Locations::HEADERS, false));
    }

    #[test]
    fn a_set_holds_two_pieces_and_a_third_evicts_the_least_recently_used() {
        let mut clean = CleanPieces::new();
        let first = b"x-a: 0".to_vec();
        let set = set_of(&first, Locations::HEADERS, false);
        let mut same_set = (0..100_000u32)
            .map(|i| format!("x-b: {i}").into_bytes())
            .filter(|p| set_of(p, Locations::HEADERS, false) == set);
        let second = same_set.next().expect("a piece of the same set");
        let third = same_set.next().expect("another piece of the same set");
        clean.insert(&first, Locations::HEADERS, false);
        clean.insert(&second, Locations::HEADERS, false);
        assert!(clean.contains(&first, Locations::HEADERS, false));
        assert!(clean.contains(&second, Locations::HEADERS, false));
        // `second` is now the less recently used of the two: the third piece takes its way.
        assert!(clean.contains(&first, Locations::HEADERS, false));
        assert!(!clean.contains(&third, Locations::HEADERS, false));
        clean.insert(&third, Locations::HEADERS, false);
        assert!(clean.contains(&third, Locations::HEADERS, false));
        assert!(clean.contains(&first, Locations::HEADERS, false));
        assert!(!clean.contains(&second, Locations::HEADERS, false));
    }
}
