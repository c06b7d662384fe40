//! IP addresses, CIDR ranges and Envoy's socket addresses as text, read and written by the
//! crate's own small code rather than by `ipnet` and `core::net`'s parser and `Display`.
//!
//! Those cost about 14 KB of Wasm together, and V8 compiles every byte in every sidecar, for a
//! few fixed grammars. The values stay `std::net`'s plain types (which cost nothing); only the
//! conversions to and from text live here. They accept, refuse and print exactly what the
//! libraries did, quirks included, because policies that loaded before must load the same:
//! - a CIDR `addr/len` follows `ipnet` 2: IPv4 octets may have leading zeros (`010.0.0.0/8` is
//!   `10.0.0.0/8`), the prefix length has at most 2 digits for IPv4 and 3 for IPv6, and `::`
//!   may stand for no group at all (`1:2:3:4:5:6:7::8/128`);
//! - a bare address and a socket address follow std: no leading zeros in an octet, `::` stands
//!   for at least one group, a port is any run of decimal digits up to 65535, a `[v6%scope]`
//!   scope is a decimal `u32` (and is dropped);
//! - an IPv6 address prints as std prints it (RFC 5952: lowercase, the first longest run of two
//!   or more zero groups as `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`).
//!
//! `tests.rs` checks all of this against `ipnet` and std over many valid and malformed inputs.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[cfg(test)]
mod tests;

/// A CIDR range: an address and a prefix length (at most 32 for IPv4, 128 for IPv6).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// The range `addr/prefix_len`; `None` when the length is too long for the family.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Option<Cidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix_len <= max).then_some(Cidr { addr, prefix_len })
    }

    /// The one address `addr` (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Cidr {
        let prefix_len = if addr.is_ipv4() { 32 } else { 128 };
        Cidr { addr, prefix_len }
    }

    /// Parses `addr/len` as `ipnet` 2 does (see the module comment); host bits may be set.
    pub fn parse(raw: &str) -> Option<Cidr> {
        let mut r = Reader::new(raw);
        // As ipnet: the IPv4 form when it reads, else the IPv6 form; then the input must end.
        let net = r
            .atomically(|r| {
                let addr = r.ipv4(LAX)?;
                r.eat(b'/').then_some(())?;
                let len = r.number(10, 2, true, 32)?;
                Some((IpAddr::V4(addr), len))
            })
            .or_else(|| {
                r.atomically(|r| {
                    let addr = r.ipv6(LAX)?;
                    r.eat(b'/').then_some(())?;
                    let len = r.number(10, 3, true, 128)?;
                    Some((IpAddr::V6(addr), len))
                })
            })?;
        let (addr, len) = r.end(net)?;
        Cidr::new(addr, u8::try_from(len).ok()?)
    }

    /// The address as written (host bits included).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The same range with the host bits cleared (`10.1.2.3/8` gives `10.0.0.0/8`).
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & self.mask32())),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & self.mask128())),
        };
        Cidr { addr, ..*self }
    }

    /// Whether `ip`, of the same family, is in the range (an IPv4 address is never in an IPv6
    /// range, nor the other way round).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = self.mask32();
                u32::from(ip) & mask == u32::from(net) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = self.mask128();
                u128::from(ip) & mask == u128::from(net) & mask
            }
            _ => false,
        }
    }

    fn mask32(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0)
    }

    fn mask128(&self) -> u128 {
        u128::MAX
            .checked_shl(128 - u32::from(self.prefix_len))
            .unwrap_or(0)
    }
}

impl fmt::Display for Cidr {
    /// `addr/len`, the address as std prints it (as `ipnet` printed it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        push_ip(&mut text, self.addr);
        text.push('/');
        let mut len = Text::default();
        len.number(u32::from(self.prefix_len), 10);
        len.flush(&mut text);
        f.write_str(&text)
    }
}

impl fmt::Debug for Cidr {
    // The text, not the fields: `IpAddr`'s Debug would pull in std's address printing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses an IPv4 or IPv6 address as std's `IpAddr::from_str` does.
pub fn parse_ip(raw: &str) -> Option<IpAddr> {
    let mut r = Reader::new(raw);
    let ip = match r.ipv4(STRICT) {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(r.ipv6(STRICT)?),
    };
    r.end(ip)
}

/// Parses an IPv6 address as std's `Ipv6Addr::from_str` does.
pub fn parse_ipv6(raw: &str) -> Option<Ipv6Addr> {
    let mut r = Reader::new(raw);
    let ip = r.ipv6(STRICT)?;
    r.end(ip)
}

/// Parses `a.b.c.d:port` or `[v6]:port` (or `[v6%scope]:port`) as std's `SocketAddr::from_str`
/// does; the scope is dropped.
pub fn parse_socket(raw: &str) -> Option<(IpAddr, u16)> {
    let mut r = Reader::new(raw);
    let socket = r
        .atomically(|r| {
            let ip = r.ipv4(STRICT)?;
            Some((IpAddr::V4(ip), r.port()?))
        })
        .or_else(|| {
            r.atomically(|r| {
                r.eat(b'[').then_some(())?;
                let ip = r.ipv6(STRICT)?;
                // A scope that does not read leaves the `%` there, and `]` then fails.
                let _ = r.atomically(|r| {
                    r.eat(b'%').then_some(())?;
                    r.number(10, usize::MAX, true, u32::MAX)
                });
                r.eat(b']').then_some(())?;
                Some((IpAddr::V6(ip), r.port()?))
            })
        })?;
    r.end(socket)
}

/// Appends `ip` as std's `Display` writes it.
pub fn push_ip(out: &mut String, ip: IpAddr) {
    let mut text = Text::default();
    match ip {
        IpAddr::V4(v4) => text.ipv4(v4),
        IpAddr::V6(v6) => text.ipv6(v6),
    }
    text.flush(out);
}

/// Appends `ip` as std's `Display` writes it: `a.b.c.d`.
pub fn push_ipv4(out: &mut String, ip: Ipv4Addr) {
    push_ip(out, IpAddr::V4(ip));
}

/// Appends `ip` as std's `Display` writes it (RFC 5952, see the module comment).
pub fn push_ipv6(out: &mut String, ip: Ipv6Addr) {
    push_ip(out, IpAddr::V6(ip));
}

/// An address's text, built in place: the longest (`ffff:` times 8, or `::ffff:` and an IPv4
/// address) fits, and one copy into the `String` costs less code than a push per character.
struct Text {
    bytes: [u8; 40],
    len: usize,
}

impl Default for Text {
    fn default() -> Text {
        Text {
            bytes: [0; 40],
            len: 0,
        }
    }
}

impl Text {
    fn byte(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn str(&mut self, s: &str) {
        for &byte in s.as_bytes() {
            self.byte(byte);
        }
    }

    /// `n` in `radix` (10 or 16), lowercase, without leading zeros.
    fn number(&mut self, n: u32, radix: u32) {
        if n >= radix {
            self.number(n / radix, radix);
        }
        self.byte(b"0123456789abcdef"[(n % radix) as usize]);
    }

    fn ipv4(&mut self, ip: Ipv4Addr) {
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.byte(b'.');
            }
            self.number(u32::from(octet), 10);
        }
    }

    fn ipv6(&mut self, ip: Ipv6Addr) {
        if let Some(v4) = ip.to_ipv4_mapped() {
            self.str("::ffff:");
            return self.ipv4(v4);
        }
        let groups = ip.segments();
        // An opaque bound keeps both loops rolled: unrolled 8 times they were 2 KB of Wasm, for
        // text written only into records and configuration.
        let count = std::hint::black_box(groups.len());
        // The first longest run of zero groups; `::` only for two or more.
        let (mut start, mut len, mut run_start, mut run_len) = (0, 0, 0, 0);
        for i in 0..count {
            if groups.get(i) == Some(&0) {
                if run_len == 0 {
                    run_start = i;
                }
                run_len += 1;
                if run_len > len {
                    (start, len) = (run_start, run_len);
                }
            } else {
                run_len = 0;
            }
        }
        if len < 2 {
            (start, len) = (count, 0);
        }
        for i in 0..count {
            if i == start {
                self.str("::");
            }
            if (start..start + len).contains(&i) {
                continue;
            }
            if i > 0 && i != start + len {
                self.byte(b':');
            }
            self.number(u32::from(groups.get(i).copied().unwrap_or(0)), 16);
        }
    }

    fn flush(&self, out: &mut String) {
        let bytes = self.bytes.get(..self.len).unwrap_or_default();
        // Always ASCII, so always UTF-8.
        out.push_str(std::str::from_utf8(bytes).unwrap_or_default());
    }
}

/// `ipnet`'s grammar: IPv4 octets may have leading zeros, `::` may stand for no group.
const LAX: bool = true;
/// std's grammar.
const STRICT: bool = false;

/// A cursor over the input's bytes; each `read` either consumes what it read or nothing, as
/// std's parser (and ipnet's copy of an older one) does, which is what makes the grammars agree.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(raw: &'a str) -> Reader<'a> {
        Reader {
            rest: raw.as_bytes(),
        }
    }

    /// `value` if the whole input was read.
    fn end<T>(&self, value: T) -> Option<T> {
        self.rest.is_empty().then_some(value)
    }

    /// Runs `read`, putting the cursor back when it fails.
    fn atomically<T>(&mut self, read: impl FnOnce(&mut Reader<'a>) -> Option<T>) -> Option<T> {
        let start = self.rest;
        let value = read(self);
        if value.is_none() {
            self.rest = start;
        }
        value
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        match self.rest.split_first() {
            Some((&first, tail)) if first == byte => {
                self.rest = tail;
                true
            }
            _ => false,
        }
    }

    /// The whole run of `radix` digits here, refused when it is empty, has more than
    /// `max_digits` digits, a leading zero (unless `zero_prefix` or the number is `0`) or a
    /// value above `max`.
    // Not inlined: one copy serves the octets, groups, prefix lengths, ports and scopes.
    #[inline(never)]
    fn number(
        &mut self,
        radix: u32,
        max_digits: usize,
        zero_prefix: bool,
        max: u32,
    ) -> Option<u32> {
        let start = self.rest;
        let (mut value, mut digits) = (0u64, 0usize);
        while let Some((&byte, tail)) = self.rest.split_first() {
            let Some(digit) = char::from(byte).to_digit(radix) else {
                break;
            };
            self.rest = tail;
            value = value * u64::from(radix) + u64::from(digit);
            digits += 1;
            // Both only grow: failing now is failing at the end, and `value` cannot overflow.
            if digits > max_digits || value > u64::from(max) {
                self.rest = start;
                return None;
            }
        }
        if digits == 0 || (!zero_prefix && digits > 1 && start.first() == Some(&b'0')) {
            self.rest = start;
            return None;
        }
        u32::try_from(value).ok()
    }

    /// `:` and a decimal port (any number of digits, leading zeros allowed).
    fn port(&mut self) -> Option<u16> {
        self.atomically(|r| {
            r.eat(b':').then_some(())?;
            let port = r.number(10, usize::MAX, true, u32::from(u16::MAX))?;
            u16::try_from(port).ok()
        })
    }

    /// `a.b.c.d`, each octet 1 to 3 decimal digits up to 255.
    fn ipv4(&mut self, lax: bool) -> Option<Ipv4Addr> {
        self.atomically(|r| {
            let mut octets = [0u8; 4];
            for (i, octet) in octets.iter_mut().enumerate() {
                if i > 0 && !r.eat(b'.') {
                    return None;
                }
                *octet = u8::try_from(r.number(10, 3, lax, 255)?).ok()?;
            }
            Some(Ipv4Addr::from(octets))
        })
    }

    /// An IPv6 address: up to 8 groups, one `::`, an IPv4 address as the last two groups.
    fn ipv6(&mut self, lax: bool) -> Option<Ipv6Addr> {
        self.atomically(|r| {
            let mut head = [0u16; 8];
            let (head_len, head_ipv4) = r.groups(&mut head, lax);
            if head_len == 8 {
                return Some(Ipv6Addr::from(head));
            }
            // An IPv4 part only at the very end, never before `::`.
            if head_ipv4 || !(r.eat(b':') && r.eat(b':')) {
                return None;
            }
            let mut tail = [0u16; 8];
            // std: `::` stands for at least one group; ipnet: for none or more.
            let limit = if lax { 8 - head_len } else { 7 - head_len };
            let (tail_len, _) = r.groups(tail.get_mut(..limit)?, lax);
            head.get_mut(8 - tail_len..)?
                .copy_from_slice(tail.get(..tail_len)?);
            Some(Ipv6Addr::from(head))
        })
    }

    /// Colon-separated groups (up to `groups.len()`), the last two possibly an IPv4 address:
    /// how many were read, and whether an IPv4 address ended them.
    fn groups(&mut self, groups: &mut [u16], lax: bool) -> (usize, bool) {
        let limit = groups.len();
        for i in 0..limit {
            if i + 1 < limit {
                let ipv4 = self.atomically(|r| {
                    if i > 0 && !r.eat(b':') {
                        return None;
                    }
                    r.ipv4(lax)
                });
                if let Some(ipv4) = ipv4 {
                    let [a, b, c, d] = ipv4.octets();
                    if let Some(pair) = groups.get_mut(i..i + 2) {
                        pair.copy_from_slice(&[
                            u16::from_be_bytes([a, b]),
                            u16::from_be_bytes([c, d]),
                        ]);
                    }
                    return (i + 2, true);
                }
            }
            let group = self.atomically(|r| {
                if i > 0 && !r.eat(b':') {
                    return None;
                }
                r.number(16, 4, true, 0xffff)
            });
            match (group, groups.get_mut(i)) {
                (Some(group), Some(slot)) => *slot = group as u16,
                _ => return (i, false),
            }
        }
        (limit, false)
    }
}
