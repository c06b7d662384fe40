//! The crate's address and CIDR text against the libraries it replaced: `ipnet` for `addr/len`,
//! std for bare addresses, socket addresses and printing. Hand-picked edge cases first, then
//! many generated inputs, valid and malformed.

use super::*;
use crate::test_rng::Rng;
use std::net::SocketAddr;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::identity::{parse_cidr, parse_socket_address, CidrError};

/// `ipnet`'s reading of `raw` in the crate's terms.
fn ipnet_cidr(raw: &str) -> Option<Cidr> {
    let net = raw.parse::<ipnet::IpNet>().ok()?;
    Some(Cidr::new(net.addr(), net.prefix_len()).unwrap())
}

/// What `identity::parse_cidr` returned when it was written with ipnet and std.
fn old_parse_cidr(raw: &str) -> Result<(String, String), CidrError> {
    if let Ok(net) = raw.parse::<ipnet::IpNet>() {
        let network = net.trunc();
        return if network == net {
            Ok((net.to_string(), format!("{net:?}")))
        } else {
            let expected = Cidr::new(network.addr(), network.prefix_len()).unwrap();
            assert_eq!(expected.to_string(), network.to_string(), "{raw}");
            Err(CidrError::HostBits { network: expected })
        };
    }
    raw.parse::<IpAddr>()
        .map(|ip| {
            let net = ipnet::IpNet::from(ip);
            (net.to_string(), format!("{net:?}"))
        })
        .map_err(|_| CidrError::Invalid)
}

/// What `identity::parse_socket_address` returned when it was written with std.
fn old_parse_socket_address(address: &str) -> Option<(IpAddr, Option<u16>)> {
    let address = address.trim_ascii();
    if let Ok(sa) = address.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    bare.parse::<IpAddr>().ok().map(|ip| (ip, None))
}

/// Every reader here against its oracle, for one input.
fn check(raw: &str) {
    assert_eq!(Cidr::parse(raw), ipnet_cidr(raw), "Cidr::parse({raw:?})");
    assert_eq!(
        parse_ip(raw),
        raw.parse::<IpAddr>().ok(),
        "parse_ip({raw:?})"
    );
    assert_eq!(
        parse_ipv6(raw),
        raw.parse::<Ipv6Addr>().ok(),
        "parse_ipv6({raw:?})"
    );
    assert_eq!(
        parse_socket(raw),
        raw.parse::<SocketAddr>()
            .ok()
            .map(|sa| (sa.ip(), sa.port())),
        "parse_socket({raw:?})"
    );
    let new = parse_cidr(raw).map(|net| (net.to_string(), format!("{net:?}")));
    assert_eq!(new, old_parse_cidr(raw), "parse_cidr({raw:?})");
    assert_eq!(
        parse_socket_address(raw),
        old_parse_socket_address(raw),
        "parse_socket_address({raw:?})"
    );
}

#[test]
fn hand_picked_edges_read_as_ipnet_and_std_read_them() {
    for raw in [
        // IPv4, bare and as CIDR; leading zeros (ipnet takes them in a CIDR, std refuses them).
        "10.0.0.0/8",
        "0.0.0.0/0",
        "255.255.255.255/32",
        "10.0.0.0/33",
        "10.0.0.0/032",
        "10.0.0.0/08",
        "10.0.0.0/00",
        "10.0.0.0/",
        "10.0.0.0/8/8",
        "010.0.0.0/8",
        "01.2.3.4",
        "01.2.3.4/32",
        "0001.2.3.4/32",
        "1.2.3.4",
        "1.2.3.04",
        "0.0.0.0",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.256/32",
        "1.2.3.-1",
        "+1.2.3.4",
        "1.2.3.4 ",
        " 1.2.3.4",
        " 10.0.0.0/8",
        "10.0.0.0/8 ",
        "10.0.0.0 /8",
        "10.1.2.3/8",
        "10.1.2.3/31",
        "192.0.2.7",
        // IPv6: `::` anywhere, too many groups, `::` for no group (ipnet only), long groups.
        "::",
        "::/0",
        "::1",
        "::1/128",
        "::/129",
        "::/0128",
        "::/1280",
        "1::",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8/128",
        "1:2:3:4:5:6:7::",
        "1:2:3:4:5:6:7::/128",
        "1:2:3:4:5:6:7::8",
        "1:2:3:4:5:6:7::8/128",
        "::1:2:3:4:5:6:7",
        "::1:2:3:4:5:6:7:8",
        "::1:2:3:4:5:6:7:8/128",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        ":::",
        ":1::",
        "1:::2",
        "12345::",
        "01234::",
        "0001::/16",
        "ABCD:ef01::/32",
        "2001:db8::/32",
        "2001:db8::1/32",
        "2001:DB8::1",
        "2001:db8::1",
        "fe80::1%eth0",
        "fe80::1%2",
        "fe80::1%2/64",
        // Embedded IPv4, mapped and not, and where it may not be.
        "::ffff:1.2.3.4",
        "::ffff:01.2.3.4",
        "::ffff:01.2.3.4/128",
        "::ffff:1.2.3.4/96",
        "::ffff:0.0.0.0/96",
        "::1.2.3.4",
        "1.2.3.4::",
        "1.2.3.4::/16",
        "1:2:3:4:5:6:1.2.3.4",
        "1:2:3:4:5:6:7:1.2.3.4",
        "1:2:3:4:5::1.2.3.4",
        "1:2:3:4:5:6::1.2.3.4",
        "1:2:3:4:5:6::1.2.3.4/128",
        "::1.2.3",
        "::1.2.3.4.5",
        "64:ff9b::192.0.2.33",
        // Socket addresses: ports, scopes, brackets.
        "10.1.2.3:51234",
        "10.1.2.3:0",
        "10.1.2.3:65535",
        "10.1.2.3:65536",
        "10.1.2.3:000000000000080",
        "10.1.2.3:",
        "10.1.2.3:+1",
        "01.1.2.3:80",
        "[2001:db8::1]:443",
        "[2001:db8::1]",
        "[2001:db8::1",
        "2001:db8::1]",
        "[2001:db8::1]:",
        "[::ffff:1.2.3.4]:80",
        "[fe80::1%2]:80",
        "[fe80::1%4294967295]:80",
        "[fe80::1%4294967296]:80",
        "[fe80::1%]:80",
        "[fe80::1%eth0]:80",
        "[1.2.3.4]:80",
        "[1.2.3.4]",
        " [2001:db8::1]:443 ",
        "\t10.0.0.1\n",
        "example.com:80",
        "garbage",
        "",
        " ",
        "/",
        "/8",
        ":",
        "[]",
        "é1.2.3.4",
        "1.2.3.4é",
        "::é",
    ] {
        check(raw);
    }
}

#[test]
fn the_two_grammars_differ_where_ipnet_and_std_did() {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    // Leading zeros: decimal in a CIDR, refused in a bare address.
    assert_eq!(Cidr::parse("010.0.0.0/8"), Cidr::new(v4(10, 0, 0, 0), 8));
    assert_eq!(parse_ip("010.0.0.0"), None);
    assert_eq!(parse_cidr("010.0.0.1"), Err(CidrError::Invalid));
    // `::` for no group: in a CIDR only.
    let eight = IpAddr::V6(Ipv6Addr::new(1, 2, 3, 4, 5, 6, 7, 8));
    assert_eq!(Cidr::parse("1:2:3:4:5:6:7::8/128"), Cidr::new(eight, 128));
    assert_eq!(parse_ip("1:2:3:4:5:6:7::8"), None);
    // A prefix length has at most 2 (IPv4) or 3 (IPv6) digits, leading zeros allowed.
    assert_eq!(Cidr::parse("10.0.0.0/08"), Cidr::new(v4(10, 0, 0, 0), 8));
    assert_eq!(Cidr::parse("10.0.0.0/008"), None);
    assert_eq!(Cidr::parse("::/064").map(|c| c.prefix_len()), Some(64));
    // A scope only in a socket address, where it is dropped.
    assert_eq!(
        parse_socket("[fe80::1%7]:80"),
        Some((parse_ip("fe80::1").unwrap(), 80))
    );
    assert_eq!(parse_ip("fe80::1%7"), None);
}

/// Text that looks like an address often enough to reach every branch.
fn fragment_soup(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "0", "1", "01", "00", "9", "10", "25", "255", "256", "999", "1000", "a", "f", "F", "ff",
        "ffff", "fFfF", "10000", "g", ":", ":", "::", ":::", ".", ".", "/", "/8", "/32", "/33",
        "/128", "/129", "/0", "%", "%1", "[", "]", " ", "1.2.3.4", "01.2.3.4", "::ffff:", "db8",
        "2001", ":80", ":65536", "é", "-", "+",
    ];
    let n = 1 + rng.below(10);
    (0..n).map(|_| rng.pick(PIECES)).collect()
}

/// An IPv6 address written one of the many ways std or ipnet may read it, maybe with a
/// prefix, a port or a slip.
fn ipv6_spelling(rng: &mut Rng) -> String {
    let mut groups = [0u16; 8];
    for g in groups.iter_mut() {
        *g = match rng.below(6) {
            0..=2 => 0,
            3 => 0xffff,
            4 => rng.below(16) as u16,
            _ => rng.next() as u16,
        };
    }
    let hex = |g: u16, rng: &mut Rng| match rng.below(4) {
        0 => format!("{g:04x}"),
        1 => format!("{g:X}"),
        _ => format!("{g:x}"),
    };
    // Where `::` goes: anywhere from 0 to 8 groups long (0 is ipnet's quirk).
    let (start, len) = if rng.below(4) == 0 {
        (8, 0)
    } else {
        let start = rng.below(9);
        let len = rng.below(9 - start);
        (start, len)
    };
    for g in groups[start..start + len].iter_mut() {
        *g = 0;
    }
    let mut head: Vec<String> = groups[..start].iter().map(|&g| hex(g, rng)).collect();
    let mut tail: Vec<String> = groups[start + len..].iter().map(|&g| hex(g, rng)).collect();
    // An IPv4 tail in place of the last two groups.
    let v4 = |g: &[u16], rng: &mut Rng| {
        let octet = |o: u16, rng: &mut Rng| {
            if rng.below(8) == 0 {
                format!("{o:03}")
            } else {
                o.to_string()
            }
        };
        format!(
            "{}.{}.{}.{}",
            octet(g[0] >> 8, rng),
            octet(g[0] & 0xff, rng),
            octet(g[1] >> 8, rng),
            octet(g[1] & 0xff, rng)
        )
    };
    if rng.below(3) == 0 {
        if tail.len() >= 2 {
            let n = tail.len();
            let last = &groups[8 - 2..];
            tail.truncate(n - 2);
            tail.push(v4(last, rng));
        } else if len == 0 && head.len() >= 2 {
            let n = head.len();
            let last = &groups[n - 2..n];
            head.truncate(n - 2);
            head.push(v4(last, rng));
        }
    }
    let mut text = if start == 8 && len == 0 {
        head.join(":")
    } else {
        format!("{}::{}", head.join(":"), tail.join(":"))
    };
    match rng.below(6) {
        0 => text = format!("{text}/{}", rng.below(140)),
        1 => text = format!("{text}/{:03}", rng.below(140)),
        2 => text = format!("[{text}]:{}", rng.below(70000)),
        3 => text = format!("[{text}%{}]:{}", rng.below(9), rng.below(9)),
        _ => {}
    }
    slip(rng, text)
}

/// An IPv4 address, maybe with leading zeros, a prefix or a port, maybe with a slip.
fn ipv4_spelling(rng: &mut Rng) -> String {
    let octet = |rng: &mut Rng| {
        let o = match rng.below(4) {
            0 => 0,
            1 => 255,
            _ => rng.below(300),
        };
        match rng.below(10) {
            0 => format!("0{o}"),
            1 => format!("{o:03}"),
            _ => o.to_string(),
        }
    };
    let mut text = format!(
        "{}.{}.{}.{}",
        octet(rng),
        octet(rng),
        octet(rng),
        octet(rng)
    );
    match rng.below(5) {
        0 | 1 => text = format!("{text}/{}", rng.below(40)),
        2 => text = format!("{text}/0{}", rng.below(40)),
        3 => text = format!("{text}:{}", rng.below(70000)),
        _ => {}
    }
    slip(rng, text)
}

/// Now and then one character dropped, doubled or a space added.
fn slip(rng: &mut Rng, mut text: String) -> String {
    if rng.below(4) != 0 || text.is_empty() {
        return text;
    }
    let at = rng.below(text.len());
    if !text.is_char_boundary(at) {
        return text;
    }
    match rng.below(3) {
        0 => {
            text.remove(at);
        }
        1 => {
            if let Some(c) = text[at..].chars().next() {
                text.insert(at, c);
            }
        }
        _ => text.insert(at, ' '),
    }
    text
}

#[test]
fn generated_inputs_read_as_ipnet_and_std_read_them() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let (mut cidrs, mut ips, mut sockets) = (0, 0, 0);
    for i in 0..60_000 {
        let raw = match i % 3 {
            0 => fragment_soup(&mut rng),
            1 => ipv6_spelling(&mut rng),
            _ => ipv4_spelling(&mut rng),
        };
        check(&raw);
        cidrs += usize::from(Cidr::parse(&raw).is_some());
        ips += usize::from(parse_ip(&raw).is_some());
        sockets += usize::from(parse_socket(&raw).is_some());
    }
    // The generators reach the accepting paths, not only the refusals.
    assert!(cidrs > 6_000, "{cidrs}");
    assert!(ips > 4_000, "{ips}");
    assert!(sockets > 3_500, "{sockets}");
}

#[test]
fn addresses_print_as_std_prints_them() {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let check_v6 = |ip: Ipv6Addr| {
        let mut text = String::new();
        push_ipv6(&mut text, ip);
        assert_eq!(text, ip.to_string(), "{:?}", ip.segments());
        let mut text = String::new();
        push_ip(&mut text, IpAddr::V6(ip));
        assert_eq!(text, ip.to_string());
    };
    // Every pattern of zero and non-zero groups, with several values for the non-zero ones.
    for zeros in 0u32..256 {
        for value in [1u16, 0xf, 0x10, 0xab, 0x100, 0xfff, 0x1000, 0xffff] {
            let mut groups = [0u16; 8];
            for (i, g) in groups.iter_mut().enumerate() {
                if zeros & (1 << i) == 0 {
                    *g = value.wrapping_add(i as u16);
                }
            }
            check_v6(Ipv6Addr::from(groups));
        }
    }
    for _ in 0..20_000 {
        let mut groups = [0u16; 8];
        for g in groups.iter_mut() {
            *g = match rng.below(4) {
                0 | 1 => 0,
                2 => 0xffff,
                _ => rng.next() as u16,
            };
        }
        check_v6(Ipv6Addr::from(groups));
        // Mapped, and IPv4-compatible (`::a.b.c.d`, which std prints as hex now).
        let v4 = Ipv4Addr::from(rng.next() as u32);
        check_v6(v4.to_ipv6_mapped());
        check_v6(v4.to_ipv6_compatible());
        let mut text = String::new();
        push_ip(&mut text, IpAddr::V4(v4));
        assert_eq!(text, v4.to_string());
    }
}

#[test]
fn containment_agrees_with_ipnet() {
    let mut rng = Rng(0xc1d2_e3f4_0102_0304);
    for _ in 0..20_000 {
        let v4 = |rng: &mut Rng| IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
        let v6 = |rng: &mut Rng| {
            let high = u128::from(rng.next()) << 64;
            IpAddr::V6(Ipv6Addr::from(high | u128::from(rng.next())))
        };
        let addr = if rng.below(2) == 0 {
            v4(&mut rng)
        } else {
            v6(&mut rng)
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = rng.below(max + 1) as u8;
        let net = Cidr::new(addr, len).unwrap();
        let oracle = ipnet::IpNet::new(addr, len).unwrap();
        assert_eq!(net.network().addr(), oracle.trunc().addr(), "{oracle}");
        assert_eq!(net.to_string(), oracle.to_string());
        // Inside (the address itself, with its host bits flipped), outside, other family.
        let mut probes = vec![addr, v4(&mut rng), v6(&mut rng)];
        probes.push(match addr {
            IpAddr::V4(a) => {
                let host = (rng.next() as u32).checked_shr(u32::from(len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) ^ host))
            }
            IpAddr::V6(a) => {
                let host = (u128::from(rng.next()) << 64 | u128::from(rng.next()))
                    .checked_shr(u32::from(len))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) ^ host))
            }
        });
        for ip in probes {
            assert_eq!(net.contains(ip), oracle.contains(&ip), "{oracle} {ip}");
        }
    }
    assert_eq!(Cidr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 33), None);
    assert_eq!(Cidr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 129), None);
}
