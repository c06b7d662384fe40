//! The proxy-wasm wire formats the host shares with the SDK: header maps as "pairs" (a count,
//! then the key and value lengths, then NUL-terminated keys and values) and property paths
//! (segments joined by NUL).

/// A header map as the host keeps it: lower-case names, raw values, in order.
pub(crate) type HeaderMap = Vec<(String, Vec<u8>)>;

/// Serializes a header map in the proxy-wasm pairs format (little-endian u32 lengths).
pub(crate) fn serialize_map(map: &[(String, Vec<u8>)]) -> Vec<u8> {
    let size = 4 + map
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&len_u32(map.len()).to_le_bytes());
    for (key, value) in map {
        bytes.extend_from_slice(&len_u32(key.len()).to_le_bytes());
        bytes.extend_from_slice(&len_u32(value.len()).to_le_bytes());
    }
    for (key, value) in map {
        bytes.extend_from_slice(key.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value);
        bytes.push(0);
    }
    bytes
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(raw)).ok()
}

/// Parses a header map in the proxy-wasm pairs format; `None` when it is malformed.
/// An empty input is an empty map (the SDK sends nothing for an empty map in some calls).
pub(crate) fn deserialize_map(bytes: &[u8]) -> Option<HeaderMap> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)?;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    let mut map = Vec::with_capacity(count.min(1024));
    for n in 0..count {
        let key_len = read_u32(bytes, 4 + n * 8)?;
        let value_len = read_u32(bytes, 8 + n * 8)?;
        let key = bytes.get(data..data.checked_add(key_len)?)?;
        data += key_len + 1;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data += value_len + 1;
        map.push((String::from_utf8(key.to_vec()).ok()?, value.to_vec()));
    }
    Some(map)
}

/// The key a property path is stored under: its segments joined by NUL, as the SDK sends it.
pub(crate) fn path_key<S: AsRef<str>>(path: &[S]) -> Vec<u8> {
    let mut key = Vec::new();
    for (n, part) in path.iter().enumerate() {
        if n > 0 {
            key.push(0);
        }
        key.extend_from_slice(part.as_ref().as_bytes());
    }
    key
}

/// Adds a header as Envoy's header map does: pseudo-headers (`:path`, ...) stay in front of
/// regular headers, everything else goes at the end.
pub(crate) fn add_header(map: &mut HeaderMap, key: String, value: Vec<u8>) {
    if key.starts_with(':') {
        let at = map
            .iter()
            .position(|(k, _)| !k.starts_with(':'))
            .unwrap_or(map.len());
        map.insert(at, (key, value));
    } else {
        map.push((key, value));
    }
}

/// Converts test-side `(&str, &str)` pairs into a header map, lower-casing names as Envoy does
/// (the order is kept as given).
pub(crate) fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect()
}

/// Converts a header map into `(String, String)` pairs for tests (values decoded lossily).
pub(crate) fn string_pairs(map: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trips() {
        let map = vec![
            (":method".to_string(), b"GET".to_vec()),
            ("x-empty".to_string(), Vec::new()),
        ];
        let bytes = serialize_map(&map);
        assert_eq!(&bytes[0..4], &[2, 0, 0, 0]);
        assert_eq!(deserialize_map(&bytes), Some(map));
    }

    #[test]
    fn malformed_map_is_refused() {
        assert_eq!(deserialize_map(&[5, 0, 0, 0, 1]), None);
        assert_eq!(deserialize_map(&[]), Some(Vec::new()));
    }

    #[test]
    fn pseudo_headers_are_added_before_regular_ones() {
        let mut map = vec![(":path".to_string(), b"/".to_vec())];
        add_header(&mut map, "a".into(), b"1".to_vec());
        add_header(&mut map, ":method".into(), b"GET".to_vec());
        add_header(&mut map, "b".into(), b"2".to_vec());
        let keys: Vec<&str> = map.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [":path", ":method", "a", "b"]);
    }

    #[test]
    fn path_key_joins_with_nul() {
        assert_eq!(path_key(&["a", "bc"]), b"a\0bc".to_vec());
        assert_eq!(path_key::<&str>(&[]), Vec::<u8>::new());
    }
}
