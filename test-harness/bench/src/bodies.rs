//! The bodies of the bench's request-body and response rows, generated the same way on every
//! run (no checked-in blobs): ordinary JSON of an exact length, a `multipart/form-data` upload of
//! an exact length (text fields and a binary file part), and a gzip stream of any body.
//!
//! Each pair of rows sends the same bytes two ways (multipart against an opaque body, gzip
//! against plain), so the only difference the pair measures is the decoder.

/// The boundary of [`multipart_upload`] (a browser's shape).
pub const UPLOAD_BOUNDARY: &str = "----WebKitFormBoundarymeshsightBench7MA4";

/// The `content-type` of [`multipart_upload`].
pub fn multipart_content_type() -> String {
    format!("multipart/form-data; boundary={UPLOAD_BOUNDARY}")
}

/// An order as a shop's API sends or answers it, exactly `len` bytes long (at least about 120:
/// shorter asks get the smallest such document): a customer, as many line items as fit, and a
/// note padded to the length. Many `"`-delimited keys and values, as real JSON has.
pub fn ordinary_json(len: usize) -> Vec<u8> {
    const NAMES: [&str; 6] = [
        "Stoneware mug, 350 ml",
        "Linen tea towel",
        "Cast iron skillet 26 cm",
        "Bamboo cutting board",
        "Glass storage jar, 1 l",
        "Chef's knife 20 cm",
    ];
    const TAGS: [&str; 4] = ["kitchen", "gift", "sale", "new"];
    let head = r#"{"order":"ORD-2026-004217","status":"confirmed","customer":{"id":"c-18422","name":"Ada Lovelace","email":"ada@example.com","country":"GB"},"items":["#;
    let tail_open = r#"],"note":""#;
    let tail_close = r#""}"#;
    let mut out = String::with_capacity(len.max(256));
    out.push_str(head);
    for i in 0.. {
        let item = format!(
            r#"{{"line":{i},"sku":"SKU-{:05}","name":"{}","qty":{},"price":{{"amount":{},"currency":"EUR"}},"tags":["{}","{}"]}}"#,
            (i * 7919) % 100_000,
            NAMES[i % NAMES.len()],
            1 + i % 4,
            490 + (i * 37) % 9000,
            TAGS[i % TAGS.len()],
            TAGS[(i + 1) % TAGS.len()],
        );
        let comma = usize::from(i > 0);
        if out.len() + comma + item.len() + tail_open.len() + tail_close.len() > len {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push_str(tail_open);
    let pad = len.saturating_sub(out.len() + tail_close.len());
    out.extend(
        "Leave at the front door, ring twice. "
            .chars()
            .cycle()
            .take(pad),
    );
    out.push_str(tail_close);
    out.into_bytes()
}

/// A photo upload as a browser sends it, exactly `len` bytes long (at least about 600): three
/// text fields, then a `photo.jpg` part of JPEG-like binary bytes (pseudo-random, with NULs,
/// as any image has) filling the rest. Send with [`multipart_content_type`].
pub fn multipart_upload(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    for (name, value) in [
        ("title", "Team offsite, day two"),
        ("album", "2026-events"),
        (
            "description",
            "Everyone at the lake before the storm; photo by Sam.",
        ),
    ] {
        out.extend_from_slice(
            format!(
                "--{UPLOAD_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(
        format!(
            "--{UPLOAD_BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    let closing = format!("\r\n--{UPLOAD_BOUNDARY}--\r\n");
    let image_len = len.saturating_sub(out.len() + closing.len());
    // A JPEG's start-of-image and APP0 markers, then xorshift bytes: incompressible, binary.
    let magic = [
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    out.extend(
        magic
            .into_iter()
            .chain(std::iter::repeat_with(move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as u8
            }))
            .take(image_len),
    );
    out.extend_from_slice(closing.as_bytes());
    out
}

/// `data` as a gzip stream (RFC 1952: header, deflate at level 6, CRC-32 and length), what a
/// client sends with `content-encoding: gzip`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    out.extend(crc32(data).to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952 section 2.3.1).
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected), bit by bit: the bench computes it once per body.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshsight_policy::mirror::decode::inflate::{inflate, Coding, Outcome};
    use meshsight_policy::mirror::decode::multipart;

    #[test]
    fn ordinary_json_is_json_of_exactly_the_length_asked() {
        for len in [300, 16 * 1024, 65_536] {
            let body = ordinary_json(len);
            assert_eq!(body.len(), len);
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(value["items"].as_array().unwrap().len() >= len / 200);
        }
        assert_eq!(
            ordinary_json(16_384),
            ordinary_json(16_384),
            "deterministic"
        );
    }

    #[test]
    fn the_upload_is_read_by_the_mirrors_multipart_reader_as_four_parts() {
        let body = multipart_upload(65_536);
        assert_eq!(body.len(), 65_536);
        let content_type = multipart_content_type();
        let boundary = multipart::boundary(&content_type).unwrap();
        let parts = multipart::parse(&body, boundary, true);
        assert!(!parts.malformed && !parts.capped, "{parts:?}");
        let names: Vec<&[u8]> = parts.parts.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [&b"title"[..], b"album", b"description", b"photo"],
            "three fields and the file"
        );
        let photo = &parts.parts[3];
        assert_eq!(photo.filename, Some(&b"photo.jpg"[..]));
        assert!(photo.value.len() > 60_000, "{}", photo.value.len());
        // Binary, as an image is: the mirror leaves its bytes to the whole-body view.
        assert!(photo.value.contains(&0));
        assert_eq!(multipart_upload(65_536), body, "deterministic");
    }

    #[test]
    fn gzip_inflates_back_to_the_json_through_the_mirrors_inflater() {
        let json = ordinary_json(16_384);
        let stream = gzip(&json);
        assert!(stream.len() < json.len() / 3, "{} bytes", stream.len());
        let inflated = inflate(Coding::Gzip, &stream, 65_536);
        assert_eq!(inflated.outcome, Outcome::Complete);
        assert_eq!(inflated.bytes, json);
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
