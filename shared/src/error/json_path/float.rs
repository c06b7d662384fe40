//! A float's shortest round-trip digits, and the two texts the crate prints them in: Rust's
//! `Display` (`0.1`, `1e21` as `1000000000000000000000`) for policy error messages, and
//! serde_json's (`1.0`, `1e+300`) for the numbers of a JSON body the mirror reads.
//!
//! Why not `format!`: any `f64` formatted with std pulls in core's `flt2dec` (Grisu with a Dragon
//! fallback, exact and shortest modes): about 18 KB of Wasm that every sidecar compiles, for an
//! error message and a body's rare floats. This is Dragon alone (the free-format algorithm of
//! Steele & White, as core's `strategy::dragon::format_shortest` runs it, same intervals, same
//! rounding), on a small fixed bignum: the same digits, tested against std on every class of
//! value and millions of random bit patterns.

use std::cmp::Ordering;

/// Limbs enough for any f64 scaled to an integer (`2^1077` and `10^324`), with room to spare.
const LIMBS: usize = 40;

/// An unsigned integer of up to `LIMBS` 32-bit limbs, least significant first.
#[derive(Clone)]
struct Big {
    size: usize,
    limbs: [u32; LIMBS],
}

// Not inlined: one copy of each step, at the cost of calls (the formatter runs on error
// messages and a JSON body's floats only).
impl Big {
    #[inline(never)]
    fn from_u64(v: u64) -> Big {
        let mut big = Big {
            size: 0,
            limbs: [0; LIMBS],
        };
        #[allow(clippy::cast_possible_truncation)]
        {
            big.limbs[0] = v as u32;
            big.limbs[1] = (v >> 32) as u32;
        }
        big.size = if v >> 32 != 0 { 2 } else { 1 };
        big
    }

    #[inline(never)]
    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.limbs[..self.size] {
            let v = u64::from(*limb) * u64::from(m) + carry;
            #[allow(clippy::cast_possible_truncation)]
            {
                *limb = v as u32;
            }
            carry = v >> 32;
        }
        if carry != 0 && self.size < LIMBS {
            #[allow(clippy::cast_possible_truncation)]
            {
                self.limbs[self.size] = carry as u32;
            }
            self.size += 1;
        }
    }

    #[inline(never)]
    fn mul_pow2(&mut self, bits: usize) {
        let (words, bits) = (bits / 32, bits % 32);
        if words > 0 {
            let size = (self.size + words).min(LIMBS);
            for i in (words..size).rev() {
                self.limbs[i] = self.limbs[i - words];
            }
            for limb in &mut self.limbs[..words.min(LIMBS)] {
                *limb = 0;
            }
            self.size = size;
        }
        if bits > 0 {
            let mut carry = 0u32;
            for limb in &mut self.limbs[..self.size] {
                let v = *limb;
                *limb = (v << bits) | carry;
                carry = v >> (32 - bits);
            }
            if carry != 0 && self.size < LIMBS {
                self.limbs[self.size] = carry;
                self.size += 1;
            }
        }
    }

    fn mul_pow10(&mut self, mut n: usize) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        self.mul_small(10u32.pow(u32::try_from(n).unwrap_or(0)));
    }

    /// `self - other`, for `self >= other`.
    #[inline(never)]
    fn sub(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.size {
            let v = i64::from(self.limbs[i]) - i64::from(other.limbs[i]) - borrow;
            borrow = i64::from(v < 0);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            {
                self.limbs[i] = (v + (borrow << 32)) as u32;
            }
        }
        while self.size > 1 && self.limbs[self.size - 1] == 0 {
            self.size -= 1;
        }
    }

    #[inline(never)]
    fn cmp(&self, other: &Big) -> Ordering {
        let size = self.size.max(other.size);
        for i in (0..size).rev() {
            match self.limbs[i].cmp(&other.limbs[i]) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        Ordering::Equal
    }

    /// `self + other` into `out`, a number reused digit after digit rather than a copy of the
    /// whole array each time. Limbs past a number's size stay zero (`cmp`, `add` and `sub` read
    /// them).
    #[inline(never)]
    fn sum_into(&self, other: &Big, out: &mut Big) {
        let old = out.size;
        let size = self.size.max(other.size);
        let mut carry = 0u64;
        for i in 0..size {
            let v = u64::from(self.limbs[i]) + u64::from(other.limbs[i]) + carry;
            #[allow(clippy::cast_possible_truncation)]
            {
                out.limbs[i] = v as u32;
            }
            carry = v >> 32;
        }
        out.size = size;
        if carry != 0 && size < LIMBS {
            out.limbs[size] = 1;
            out.size += 1;
        }
        for limb in out.limbs.iter_mut().take(old).skip(out.size) {
            *limb = 0;
        }
    }
}

/// The shortest digits (`'1'..='9'` then any) that read back as `v` (finite, non-zero, sign
/// ignored), closest to `v` among those, and the exponent `k` with `v = 0.digits * 10^k`.
fn shortest(v: f64) -> (Vec<u8>, i32) {
    let bits = v.to_bits();
    let exp_bits = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let fraction = bits & ((1 << 52) - 1);
    // v = mant * 2^exp; its neighbours are half an ulp away: minus and plus, in the same unit.
    let (mant, minus, plus, exp) = match exp_bits {
        0 => (fraction << 1, 1, 1, -1075),
        _ if fraction == 0 => (1 << 54, 1, 2, exp_bits - 1077),
        _ => ((fraction | 1 << 52) << 1, 1, 1, exp_bits - 1076),
    };
    // An even mantissa rounds to itself from either end of its interval; core's decode counts
    // every subnormal's (scaled by two) as even.
    let inclusive = exp_bits == 0 || bits & 1 == 0;
    let rounding = if inclusive {
        Ordering::Greater
    } else {
        Ordering::Equal
    };

    // k, or one less: 10^(k-1) < v + plus <= 10^(k+1). 1292913986 = floor(2^32 * log10 2).
    let high = mant + plus;
    let nbits = 64 - i64::from((high - 1).leading_zeros());
    let mut k = i32::try_from(((nbits + i64::from(exp)) * 1_292_913_986) >> 32).unwrap_or(0);

    let mut mant = Big::from_u64(mant);
    let mut minus = Big::from_u64(minus);
    let mut plus = Big::from_u64(plus);
    let mut scale = Big::from_u64(1);
    let shift = usize::try_from(exp.unsigned_abs()).unwrap_or(0);
    if exp < 0 {
        scale.mul_pow2(shift);
    } else {
        for x in [&mut mant, &mut minus, &mut plus] {
            x.mul_pow2(shift);
        }
    }
    let tens = usize::try_from(k.unsigned_abs()).unwrap_or(0);
    if k >= 0 {
        scale.mul_pow10(tens);
    } else {
        for x in [&mut mant, &mut minus, &mut plus] {
            x.mul_pow10(tens);
        }
    }
    let mut high = Big::from_u64(0);
    mant.sum_into(&plus, &mut high);
    if scale.cmp(&high) < rounding {
        k += 1;
    } else {
        for x in [&mut mant, &mut minus, &mut plus] {
            x.mul_small(10);
        }
    }
    let mut scales = [scale.clone(), scale.clone(), scale.clone(), scale.clone()];
    for (i, s) in scales.iter_mut().enumerate() {
        s.mul_pow2(3 - i);
    }

    let mut digits = Vec::with_capacity(17);
    let (down, up) = loop {
        let mut digit = 0u8;
        for (i, s) in scales.iter().enumerate() {
            if mant.cmp(s) != Ordering::Less {
                mant.sub(s);
                digit += 8 >> i;
            }
        }
        digits.push(b'0' + digit);
        let down = mant.cmp(&minus) < rounding;
        mant.sum_into(&plus, &mut high);
        let up = scale.cmp(&high) < rounding;
        if down || up || digits.len() >= 17 {
            break (down, up);
        }
        for x in [&mut mant, &mut minus, &mut plus] {
            x.mul_small(10);
        }
    };
    // Round up past the middle, and at the middle itself.
    if up
        && (!down || {
            mant.mul_pow2(1);
            mant.cmp(&scale) != Ordering::Less
        })
    {
        match digits.iter().rposition(|d| *d != b'9') {
            Some(i) => {
                digits[i] += 1;
                digits[i + 1..].fill(b'0');
            }
            None => {
                digits.fill(b'0');
                if let Some(first) = digits.first_mut() {
                    *first = b'1';
                }
                digits.push(b'0');
                k += 1;
            }
        }
    }
    (digits, k)
}

/// `"0"` repeated `n` times onto `out`.
fn zeros(out: &mut String, n: i32) {
    for _ in 0..n {
        out.push('0');
    }
}

fn push_digits(out: &mut String, digits: &[u8]) {
    for d in digits {
        out.push(char::from(*d));
    }
}

/// `format!("{v}")`: Rust's `Display`, the shortest digits with no exponent (`0.0000001`,
/// `1000000000000000000000`, `-0`, `NaN`, `inf`).
pub(crate) fn display(v: f64) -> String {
    let mut out = String::with_capacity(24);
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    if v.is_infinite() {
        out.push_str("inf");
    } else if v == 0.0 {
        out.push('0');
    } else {
        let (digits, k) = shortest(v);
        let len = i32::try_from(digits.len()).unwrap_or(0);
        if k <= 0 {
            out.push_str("0.");
            zeros(&mut out, -k);
            push_digits(&mut out, &digits);
        } else if k < len {
            let (int, frac) = digits.split_at(usize::try_from(k).unwrap_or(0));
            push_digits(&mut out, int);
            out.push('.');
            push_digits(&mut out, frac);
        } else {
            push_digits(&mut out, &digits);
            zeros(&mut out, k - len);
        }
    }
    out
}

/// A float as serde_json prints it (`1.0`, `0.00001`, `1e+300`, `1.5e-7`): the shortest digits,
/// in positional notation for exponents -5 to 16 and scientific beyond. `v` is finite (a JSON
/// number); a NaN or infinity prints as `display` would.
pub(crate) fn json_text(v: f64) -> String {
    if !v.is_finite() {
        return display(v);
    }
    let (digits, kk) = if v == 0.0 {
        (vec![b'0'], 1)
    } else {
        shortest(v)
    };
    let length = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let k = kk - length;
    let mut out = String::with_capacity(24);
    if v.is_sign_negative() {
        out.push('-');
    }
    if (0..=16).contains(&kk) && k >= 0 {
        push_digits(&mut out, &digits);
        zeros(&mut out, k);
        out.push_str(".0");
    } else if 0 < kk && kk <= 16 {
        let (int, frac) = digits.split_at(usize::try_from(kk).unwrap_or(0));
        push_digits(&mut out, int);
        out.push('.');
        push_digits(&mut out, frac);
    } else if -5 < kk && kk <= 0 {
        out.push_str("0.");
        zeros(&mut out, -kk);
        push_digits(&mut out, &digits);
    } else {
        let (first, rest) = digits.split_at(1);
        push_digits(&mut out, first);
        if !rest.is_empty() {
            out.push('.');
            push_digits(&mut out, rest);
        }
        out.push_str(if kk > 0 { "e+" } else { "e" });
        out.push_str(&(kk - 1).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn special_values() -> Vec<f64> {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1.5,
            -2.25,
            0.1,
            0.2,
            0.3,
            1.0 / 3.0,
            2.0 / 3.0,
            1e-7,
            1.5e-7,
            1e-5,
            1e-4,
            1e15,
            1e16,
            1e17,
            1e21,
            1e22,
            1e23,
            1.25e16,
            123_456_789.125,
            9007199254740993.0,
            9007199254740992.0,
            1e300,
            1e308,
            1.7976931348623157e308,
            5e-324,
            1e-323,
            2.2250738585072014e-308,
            f64::from_bits(0x000f_ffff_ffff_ffff),
            f64::from_bits(0x0010_0000_0000_0001),
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.000001,
            123.456,
            99.99,
            9.5,
            0.95,
            100.0,
            1234567.0,
            2.5,
            3.25159,
            -3.0e-7,
            1.1,
            2.0,
        ];
        for e in -330..=310 {
            values.push(format!("1e{e}").parse().unwrap_or(0.0));
            values.push(format!("9.999999999999999e{e}").parse().unwrap_or(0.0));
            values.push(format!("5e{e}").parse().unwrap_or(0.0));
        }
        for p in -1074..=1023 {
            values.push(2f64.powi(p));
        }
        for i in 0..2000 {
            values.push(f64::from(i) / 8.0);
            values.push(f64::from(i) / 10.0);
            values.push(f64::from(i) * 0.01);
        }
        values
    }

    /// xorshift64*: many bit patterns, the same on every run.
    fn random_bits(n: usize) -> impl Iterator<Item = f64> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n).map(move |_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            f64::from_bits(x.wrapping_mul(0x2545_F491_4F6C_DD1D))
        })
    }

    #[test]
    fn display_is_rusts_display() {
        for v in special_values() {
            assert_eq!(display(v), format!("{v}"), "{v:?}");
        }
    }

    #[test]
    fn display_is_rusts_display_on_random_bits() {
        let n = if cfg!(target_arch = "wasm32") {
            20_000
        } else {
            300_000
        };
        for v in random_bits(n) {
            assert_eq!(display(v), format!("{v}"), "{:#x}", v.to_bits());
        }
    }

    #[test]
    fn shortest_digits_are_rusts_on_random_bits() {
        // The digits and exponent of `{:e}`, on values of every magnitude.
        let n = if cfg!(target_arch = "wasm32") {
            20_000
        } else {
            300_000
        };
        for v in random_bits(n).filter(|v| v.is_finite() && *v != 0.0) {
            let sci = format!("{:e}", v.abs());
            let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
            let digits = mantissa.replace('.', "");
            let k = exp.parse::<i32>().unwrap_or(0) + 1;
            assert_eq!(shortest(v), (digits.into_bytes(), k), "{sci}");
        }
    }

    /// The text the mirror's body reader gave before this module: built on std's `{:e}`.
    fn std_json_text(f: f64) -> String {
        let sci = format!("{:e}", f.abs());
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let digits = mantissa.replace('.', "");
        let length = i32::try_from(digits.len()).unwrap_or(i32::MAX);
        let kk = exp + 1;
        let k = kk - length;
        let mut out = String::from(if f.is_sign_negative() { "-" } else { "" });
        let zeros = |n: i32| "0".repeat(usize::try_from(n).unwrap_or(0));
        if (0..=16).contains(&kk) && k >= 0 {
            out.push_str(&digits);
            out.push_str(&zeros(k));
            out.push_str(".0");
        } else if 0 < kk && kk <= 16 {
            let (int, frac) = digits.split_at(usize::try_from(kk).unwrap_or(0));
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else if -5 < kk && kk <= 0 {
            out.push_str("0.");
            out.push_str(&zeros(-kk));
            out.push_str(&digits);
        } else {
            let (first, rest) = digits.split_at(1);
            out.push_str(first);
            if !rest.is_empty() {
                out.push('.');
                out.push_str(rest);
            }
            out.push_str(if kk > 0 { "e+" } else { "e" });
            out.push_str(&(kk - 1).to_string());
        }
        out
    }

    #[test]
    fn json_text_is_what_the_std_built_text_was() {
        let n = if cfg!(target_arch = "wasm32") {
            5_000
        } else {
            100_000
        };
        let values = special_values().into_iter().chain(random_bits(n));
        for v in values.filter(|v| v.is_finite()) {
            assert_eq!(json_text(v), std_json_text(v), "{v:?}");
        }
    }

    #[test]
    fn json_text_is_serde_jsons_but_at_exact_ties() {
        // serde_json (ryu) breaks an exact tie of the 17th digit to even, std (and so the
        // mirror's reports since serde_json left the module) upwards.
        for v in special_values().into_iter().filter(|v| v.is_finite()) {
            if v == 2f64.powi(-25) {
                assert_eq!(json_text(v), "2.9802322387695313e-8");
                continue;
            }
            let theirs = serde_json::Number::from_f64(v).map(|n| n.to_string());
            if Some(json_text(v)) != theirs {
                let (digits, _) = shortest(v);
                assert_eq!(digits.len(), 17, "{v:?}: {theirs:?}");
            }
        }
    }
}
