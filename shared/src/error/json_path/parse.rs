//! The JSON text parser behind [`Json::parse`]: strict RFC 8259 (no comments, no trailing commas,
//! strings valid UTF-8 with paired surrogates), objects kept in document order with duplicates.
//!
//! Why not serde_json: the module would carry serde_json's generic parser and serde's machinery
//! only to build this tree once at configure time. This parser follows serde_json's own
//! (`from_slice`) step by step, so a policy that serde_json refused is refused here with the same
//! message at the same line and column (`expected `,` or `}` at line 3 column 7`), numbers come
//! out as the same [`Json::U64`] / [`Json::I64`] / [`Json::F64`], and nesting stops at the same
//! depth (128); the tests check both against serde_json on hostile inputs.

use std::fmt;

use super::Json;

/// Why a text is not JSON, and where: the message and position serde_json gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    reason: &'static str,
    line: usize,
    column: usize,
}

impl ParseError {
    /// One-based line of the error.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Column of the error: bytes since the start of its line.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The message without its position (`trailing comma`).
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.reason, self.line, self.column
        )
    }
}

impl std::error::Error for ParseError {}

const EOF_LIST: &str = "EOF while parsing a list";
const EOF_OBJECT: &str = "EOF while parsing an object";
const EOF_STRING: &str = "EOF while parsing a string";
const EOF_VALUE: &str = "EOF while parsing a value";
const INVALID_NUMBER: &str = "invalid number";
const INVALID_ESCAPE: &str = "invalid escape";
const LONE_SURROGATE: &str = "lone leading surrogate in hex escape";
const TRAILING_COMMA: &str = "trailing comma";
const OUT_OF_RANGE: &str = "number out of range";

/// Parses `bytes` as one JSON value with nothing after it but whitespace.
pub(super) fn parse(bytes: &[u8]) -> Result<Json, ParseError> {
    let mut parser = Parser {
        bytes,
        index: 0,
        depth_left: 128,
    };
    let value = parser.value()?;
    match parser.whitespace() {
        Some(_) => Err(parser.peek_error("trailing characters")),
        None => Ok(value),
    }
}

struct Parser<'b> {
    bytes: &'b [u8],
    index: usize,
    /// Arrays and objects that may still open (serde_json's recursion limit).
    depth_left: u8,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.index).copied()
    }

    fn peek_or_null(&self) -> u8 {
        self.peek().unwrap_or(0)
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.index += 1;
        Some(b)
    }

    fn at(&self, i: usize, reason: &'static str) -> ParseError {
        let before = &self.bytes[..i.min(self.bytes.len())];
        let start_of_line = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        ParseError {
            reason,
            line: 1 + before[..start_of_line]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
            column: i - start_of_line,
        }
    }

    /// An error at the byte just read.
    fn error(&self, reason: &'static str) -> ParseError {
        self.at(self.index, reason)
    }

    /// An error at the byte about to be read.
    fn peek_error(&self, reason: &'static str) -> ParseError {
        self.at((self.index + 1).min(self.bytes.len()), reason)
    }

    /// Skips whitespace; the next byte, not consumed.
    fn whitespace(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.index += 1;
        }
        self.peek()
    }

    fn value(&mut self) -> Result<Json, ParseError> {
        let Some(peek) = self.whitespace() else {
            return Err(self.peek_error(EOF_VALUE));
        };
        match peek {
            b'n' => self.ident(b"null").map(|()| Json::Null),
            b't' => self.ident(b"true").map(|()| Json::Bool(true)),
            b'f' => self.ident(b"false").map(|()| Json::Bool(false)),
            b'-' => {
                self.index += 1;
                self.integer(false)
            }
            b'0'..=b'9' => self.integer(true),
            b'"' => {
                self.index += 1;
                self.string().map(Json::Str)
            }
            b'[' | b'{' => {
                self.depth_left -= 1;
                if self.depth_left == 0 {
                    return Err(self.peek_error("recursion limit exceeded"));
                }
                self.index += 1;
                let value = if peek == b'[' {
                    self.array()
                } else {
                    self.object()
                };
                self.depth_left += 1;
                value
            }
            _ => Err(self.peek_error("expected value")),
        }
    }

    fn ident(&mut self, ident: &[u8]) -> Result<(), ParseError> {
        self.index += 1;
        for expected in &ident[1..] {
            match self.next() {
                None => return Err(self.error(EOF_VALUE)),
                Some(b) if b != *expected => return Err(self.error("expected ident")),
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn array(&mut self) -> Result<Json, ParseError> {
        let mut items = Vec::new();
        loop {
            let Some(peek) = self.whitespace() else {
                return Err(self.peek_error(EOF_LIST));
            };
            if peek == b']' {
                self.index += 1;
                return Ok(Json::Array(items));
            }
            if !items.is_empty() {
                if peek != b',' {
                    return Err(self.peek_error("expected `,` or `]`"));
                }
                self.index += 1;
                match self.whitespace() {
                    Some(b']') => return Err(self.peek_error(TRAILING_COMMA)),
                    Some(_) => {}
                    None => return Err(self.peek_error(EOF_VALUE)),
                }
            }
            items.push(self.value()?);
        }
    }

    fn object(&mut self) -> Result<Json, ParseError> {
        let mut members = Vec::new();
        loop {
            let Some(peek) = self.whitespace() else {
                return Err(self.peek_error(EOF_OBJECT));
            };
            if peek == b'}' {
                self.index += 1;
                return Ok(Json::Object(members));
            }
            if members.is_empty() {
                if peek != b'"' {
                    return Err(self.peek_error("key must be a string"));
                }
            } else if peek == b',' {
                self.index += 1;
                match self.whitespace() {
                    Some(b'"') => {}
                    Some(b'}') => return Err(self.peek_error(TRAILING_COMMA)),
                    Some(_) => return Err(self.peek_error("key must be a string")),
                    None => return Err(self.peek_error(EOF_VALUE)),
                }
            } else {
                return Err(self.peek_error("expected `,` or `}`"));
            }
            self.index += 1;
            let key = self.string()?;
            match self.whitespace() {
                Some(b':') => self.index += 1,
                Some(_) => return Err(self.peek_error("expected `:`")),
                None => return Err(self.peek_error(EOF_OBJECT)),
            }
            members.push((key, self.value()?));
        }
    }

    /// A string after its opening quote.
    fn string(&mut self) -> Result<String, ParseError> {
        let mut out = Vec::new();
        loop {
            let start = self.index;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.index += 1;
            }
            out.extend_from_slice(&self.bytes[start..self.index]);
            match self.next() {
                None => return Err(self.error(EOF_STRING)),
                Some(b'"') => break,
                Some(b'\\') => self.escape(&mut out)?,
                Some(_) => {
                    return Err(self
                        .error("control character (\\u0000-\\u001F) found while parsing a string"))
                }
            }
        }
        String::from_utf8(out).map_err(|e| {
            // serde_json points back from the closing quote by the bytes not valid.
            let mut error = self.error("invalid unicode code point");
            let invalid = e.as_bytes().len() - e.utf8_error().valid_up_to();
            error.column = error.column.saturating_sub(invalid);
            error
        })
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let byte = match self.next() {
            None => return Err(self.error(EOF_STRING)),
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => return self.unicode_escape(out),
            Some(_) => return Err(self.error(INVALID_ESCAPE)),
        };
        out.push(byte);
        Ok(())
    }

    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let n = self.hex4()?;
        let code = match n {
            0xDC00..=0xDFFF => return Err(self.error(LONE_SURROGATE)),
            0xD800..=0xDBFF => {
                for expected in [b'\\', b'u'] {
                    match self.peek() {
                        None => return Err(self.error(EOF_STRING)),
                        Some(b) => {
                            self.index += 1;
                            if b != expected {
                                return Err(self.error("unexpected end of hex escape"));
                            }
                        }
                    }
                }
                let n2 = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&n2) {
                    return Err(self.error(LONE_SURROGATE));
                }
                ((u32::from(n - 0xD800) << 10) | u32::from(n2 - 0xDC00)) + 0x1_0000
            }
            _ => u32::from(n),
        };
        let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let Some(digits) = self.bytes.get(self.index..self.index + 4) else {
            self.index = self.bytes.len();
            return Err(self.error(EOF_STRING));
        };
        self.index += 4;
        let mut n = 0u16;
        for d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error(INVALID_ESCAPE)),
            };
            n = (n << 4) | u16::from(v);
        }
        Ok(n)
    }

    /// A number after its sign.
    fn integer(&mut self, positive: bool) -> Result<Json, ParseError> {
        let significand = match self.next() {
            None => return Err(self.error(EOF_VALUE)),
            Some(b'0') => {
                if self.peek_or_null().is_ascii_digit() {
                    return Err(self.peek_error(INVALID_NUMBER));
                }
                0
            }
            Some(c @ b'1'..=b'9') => {
                let mut significand = u64::from(c - b'0');
                while let c @ b'0'..=b'9' = self.peek_or_null() {
                    let digit = u64::from(c - b'0');
                    if overflows(significand, digit, u64::MAX) {
                        return self.long_integer(positive, significand).map(Json::F64);
                    }
                    self.index += 1;
                    significand = significand * 10 + digit;
                }
                significand
            }
            Some(_) => return Err(self.error(INVALID_NUMBER)),
        };
        Ok(match self.peek_or_null() {
            b'.' => Json::F64(self.decimal(positive, significand, 0)?),
            b'e' | b'E' => Json::F64(self.exponent(positive, significand, 0)?),
            _ if positive => Json::U64(significand),
            _ => {
                // Two's complement: -(2^63) still fits; anything larger, and -0, is a float.
                let negated = 0i64.wrapping_sub_unsigned(significand);
                if negated >= 0 {
                    #[allow(clippy::cast_precision_loss)]
                    Json::F64(-(significand as f64))
                } else {
                    Json::I64(negated)
                }
            }
        })
    }

    /// The digits past what a `u64` holds: each one scales the kept significand by ten.
    fn long_integer(&mut self, positive: bool, significand: u64) -> Result<f64, ParseError> {
        let mut exponent = 0i32;
        loop {
            match self.peek_or_null() {
                b'0'..=b'9' => {
                    self.index += 1;
                    exponent = exponent.saturating_add(1);
                }
                b'.' => return self.decimal(positive, significand, exponent),
                b'e' | b'E' => return self.exponent(positive, significand, exponent),
                _ => return self.float(positive, significand, exponent),
            }
        }
    }

    fn decimal(
        &mut self,
        positive: bool,
        mut significand: u64,
        before: i32,
    ) -> Result<f64, ParseError> {
        self.index += 1;
        let mut after = 0i32;
        while let c @ b'0'..=b'9' = self.peek_or_null() {
            let digit = u64::from(c - b'0');
            if overflows(significand, digit, u64::MAX) {
                // Digits a u64 cannot keep are dropped, as serde_json drops them.
                while self.peek_or_null().is_ascii_digit() {
                    self.index += 1;
                }
                return match self.peek_or_null() {
                    b'e' | b'E' => self.exponent(positive, significand, before + after),
                    _ => self.float(positive, significand, before + after),
                };
            }
            self.index += 1;
            significand = significand * 10 + digit;
            after -= 1;
        }
        if after == 0 {
            return Err(match self.peek() {
                Some(_) => self.peek_error(INVALID_NUMBER),
                None => self.peek_error(EOF_VALUE),
            });
        }
        match self.peek_or_null() {
            b'e' | b'E' => self.exponent(positive, significand, before + after),
            _ => self.float(positive, significand, before + after),
        }
    }

    fn exponent(
        &mut self,
        positive: bool,
        significand: u64,
        start: i32,
    ) -> Result<f64, ParseError> {
        self.index += 1;
        let positive_exp = match self.peek_or_null() {
            b'+' => {
                self.index += 1;
                true
            }
            b'-' => {
                self.index += 1;
                false
            }
            _ => true,
        };
        let mut exp = match self.next() {
            None => return Err(self.error(EOF_VALUE)),
            Some(c @ b'0'..=b'9') => i32::from(c - b'0'),
            Some(_) => return Err(self.error(INVALID_NUMBER)),
        };
        while let c @ b'0'..=b'9' = self.peek_or_null() {
            self.index += 1;
            let digit = i32::from(c - b'0');
            if exp >= i32::MAX / 10 && (exp > i32::MAX / 10 || digit > i32::MAX % 10) {
                // An exponent past i32: infinity is an error, zero is zero.
                if significand != 0 && positive_exp {
                    return Err(self.error(OUT_OF_RANGE));
                }
                while self.peek_or_null().is_ascii_digit() {
                    self.index += 1;
                }
                return Ok(if positive { 0.0 } else { -0.0 });
            }
            exp = exp * 10 + digit;
        }
        let exponent = if positive_exp {
            start.saturating_add(exp)
        } else {
            start.saturating_sub(exp)
        };
        self.float(positive, significand, exponent)
    }

    /// `significand * 10^exponent`, computed as serde_json computes it (without its
    /// `float_roundtrip` feature), so that both read a policy's numbers to the same bits.
    fn float(
        &mut self,
        positive: bool,
        significand: u64,
        mut exponent: i32,
    ) -> Result<f64, ParseError> {
        #[allow(clippy::cast_precision_loss)]
        let mut f = significand as f64;
        loop {
            match POW10.get(exponent.unsigned_abs() as usize) {
                Some(&pow) => {
                    if exponent >= 0 {
                        f *= pow;
                        if f.is_infinite() {
                            return Err(self.error(OUT_OF_RANGE));
                        }
                    } else {
                        f /= pow;
                    }
                    break;
                }
                None => {
                    if f == 0.0 {
                        break;
                    }
                    if exponent >= 0 {
                        return Err(self.error(OUT_OF_RANGE));
                    }
                    f /= 1e308;
                    exponent += 308;
                }
            }
        }
        Ok(if positive { f } else { -f })
    }
}

/// Whether `value * 10 + digit` passes `max`.
fn overflows(value: u64, digit: u64, max: u64) -> bool {
    value >= max / 10 && (value > max / 10 || digit > max % 10)
}

/// Powers of ten as literals (each correctly rounded), as serde_json keeps them.
#[rustfmt::skip]
static POW10: [f64; 309] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31,
    1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46,
    1e47, 1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60, 1e61,
    1e62, 1e63, 1e64, 1e65, 1e66, 1e67, 1e68, 1e69, 1e70, 1e71, 1e72, 1e73, 1e74, 1e75, 1e76,
    1e77, 1e78, 1e79, 1e80, 1e81, 1e82, 1e83, 1e84, 1e85, 1e86, 1e87, 1e88, 1e89, 1e90, 1e91,
    1e92, 1e93, 1e94, 1e95, 1e96, 1e97, 1e98, 1e99, 1e100, 1e101, 1e102, 1e103, 1e104, 1e105,
    1e106, 1e107, 1e108, 1e109, 1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116, 1e117, 1e118,
    1e119, 1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129, 1e130, 1e131,
    1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139, 1e140, 1e141, 1e142, 1e143, 1e144,
    1e145, 1e146, 1e147, 1e148, 1e149, 1e150, 1e151, 1e152, 1e153, 1e154, 1e155, 1e156, 1e157,
    1e158, 1e159, 1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168, 1e169, 1e170,
    1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179, 1e180, 1e181, 1e182, 1e183,
    1e184, 1e185, 1e186, 1e187, 1e188, 1e189, 1e190, 1e191, 1e192, 1e193, 1e194, 1e195, 1e196,
    1e197, 1e198, 1e199, 1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207, 1e208, 1e209,
    1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219, 1e220, 1e221, 1e222,
    1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229, 1e230, 1e231, 1e232, 1e233, 1e234, 1e235,
    1e236, 1e237, 1e238, 1e239, 1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246, 1e247, 1e248,
    1e249, 1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259, 1e260, 1e261,
    1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269, 1e270, 1e271, 1e272, 1e273, 1e274,
    1e275, 1e276, 1e277, 1e278, 1e279, 1e280, 1e281, 1e282, 1e283, 1e284, 1e285, 1e286, 1e287,
    1e288, 1e289, 1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298, 1e299, 1e300,
    1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308,
];
