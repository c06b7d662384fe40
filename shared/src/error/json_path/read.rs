//! Reads the raw policy types from a parsed [`Json`] tree, each by a small hand-written
//! [`ReadJson`] impl beside its type, with the path and the words serde's derives gave.
//!
//! Why by hand: serde's derives compiled one visitor per type and per deserializer, about a
//! hundred and fifty kilobytes of configure-time Wasm that every sidecar compiles. Here the
//! walking, the path and the messages live once in [`At`], and a type's reader is a list of its
//! fields. The messages are serde's, word for word (`unknown field `nmae`, expected one of ...`,
//! `missing field `name``, `invalid type: string "x", expected u32`), as is which error comes
//! first: members in document order, then missing fields in declaration order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Json, PathError, Segment};

/// A type read from a JSON value, with the JSON path of any error.
pub trait ReadJson: Sized {
    /// Reads the value `at` stands on.
    fn read_json(at: At<'_, '_>) -> Result<Self, PathError>;
}

/// A value of the tree and where it stands (rendered only when an error needs it).
#[derive(Clone, Copy)]
pub struct At<'j, 's> {
    value: &'j Json,
    at: Segment<'s>,
}

/// One member of an object being read, handed to the reader of its object.
pub struct Member<'j, 's> {
    /// The member's name, one of the object's fields.
    pub name: &'j str,
    value: At<'j, 's>,
    object: At<'j, 's>,
}

impl<'j, 's> At<'j, 's> {
    /// Reads `T` from the value at `path` of its document (`""` for the document itself).
    pub(super) fn root<T: ReadJson>(value: &'j Json, path: &'s str) -> Result<T, PathError> {
        T::read_json(At {
            value,
            at: Segment::Root(path),
        })
    }

    /// The value itself.
    pub fn json(&self) -> &'j Json {
        self.value
    }

    /// An error at this value.
    #[cold]
    #[inline(never)]
    pub fn error(&self, reason: impl Into<String>) -> PathError {
        let mut path = String::new();
        self.at.write(&mut path);
        PathError {
            path: Some(path),
            reason: reason.into(),
        }
    }

    /// serde's `invalid type: <what is here>, expected <expected>`.
    #[cold]
    #[inline(never)]
    pub fn invalid_type(&self, expected: &str) -> PathError {
        self.error(format!(
            "invalid type: {}, expected {expected}",
            Unexpected(self.value)
        ))
    }

    /// Reads a string.
    pub fn string(&self) -> Result<&'j str, PathError> {
        match self.value {
            Json::Str(s) => Ok(s),
            _ => Err(self.invalid_type("a string")),
        }
    }

    /// Reads a non-negative integer up to `max`, named `expected` (`u16`) in errors.
    fn unsigned(&self, max: u64, expected: &str) -> Result<u64, PathError> {
        match self.value {
            Json::U64(v) if *v <= max => Ok(*v),
            Json::U64(_) | Json::I64(_) => Err(self.error(format!(
                "invalid value: {}, expected {expected}",
                Unexpected(self.value)
            ))),
            _ => Err(self.invalid_type(expected)),
        }
    }

    /// Hands each element of an array to `each`, at `[index]` (the loop once for every element
    /// type).
    fn elements(
        &self,
        each: &mut dyn FnMut(At<'j, '_>) -> Result<(), PathError>,
    ) -> Result<(), PathError> {
        let Json::Array(items) = self.value else {
            return Err(self.invalid_type("a sequence"));
        };
        for (i, value) in items.iter().enumerate() {
            each(At {
                value,
                at: Segment::Index(&self.at, i),
            })?;
        }
        Ok(())
    }

    /// Member `name` of this object, holding `value`.
    fn key<'c>(&'c self, name: &'c str, value: &'j Json) -> At<'j, 'c> {
        At {
            value,
            at: Segment::Key(&self.at, name),
        }
    }

    /// Reads the members of an object that is the struct `expected` (`struct RawRule`), in
    /// document order: a name not in `fields` is refused (serde's `deny_unknown_fields`), each
    /// other member goes to `member`.
    pub fn object(
        &self,
        expected: &str,
        fields: &'static [&'static str],
        member: &mut dyn FnMut(Member<'j, '_>) -> Result<(), PathError>,
    ) -> Result<(), PathError> {
        self.members(expected, Some(fields), true, member)
    }

    /// As [`At::object`], but members not in `fields` are skipped (a struct without
    /// `deny_unknown_fields`).
    pub fn open_object(
        &self,
        expected: &str,
        fields: &'static [&'static str],
        member: &mut dyn FnMut(Member<'j, '_>) -> Result<(), PathError>,
    ) -> Result<(), PathError> {
        self.members(expected, Some(fields), false, member)
    }

    /// Hands every member of an object (`expected` names it in errors) to `member`, in
    /// document order, whatever its name.
    pub fn each_member(
        &self,
        expected: &str,
        member: &mut dyn FnMut(Member<'j, '_>) -> Result<(), PathError>,
    ) -> Result<(), PathError> {
        self.members(expected, None, false, member)
    }

    fn members(
        &self,
        expected: &str,
        fields: Option<&'static [&'static str]>,
        refuse_unknown: bool,
        member: &mut dyn FnMut(Member<'j, '_>) -> Result<(), PathError>,
    ) -> Result<(), PathError> {
        let Json::Object(members) = self.value else {
            return Err(self.invalid_type(expected));
        };
        for (name, value) in members {
            let here = self.key(name, value);
            if let Some(fields) = fields.filter(|f| !f.contains(&name.as_str())) {
                if refuse_unknown {
                    return Err(here.error(unknown("field", name, fields)));
                }
                continue;
            }
            member(Member {
                name,
                value: here,
                object: *self,
            })?;
        }
        Ok(())
    }

    /// A field that must be there: `missing field `name`` at this object otherwise.
    pub fn required<T>(&self, slot: Option<T>, name: &str) -> Result<T, PathError> {
        slot.ok_or_else(|| self.missing(name))
    }

    #[cold]
    #[inline(never)]
    fn missing(&self, name: &str) -> PathError {
        self.error(format!("missing field `{name}`"))
    }

    /// Reads an enum written as a string (`"enforce"`) or, as serde also reads it, an object
    /// of one member (`{"enforce": null}`, `{"http": {...}}`): the variant's index in
    /// `variants`, and its data (at `.variant`) when written as an object.
    pub fn variant(
        &self,
        expected: &str,
        variants: &'static [&'static str],
    ) -> Result<(usize, Option<At<'j, '_>>), PathError> {
        let index = |name: &str| variants.iter().position(|v| *v == name);
        match self.value {
            Json::Str(name) => match index(name) {
                Some(i) => Ok((i, None)),
                None => Err(self.error(unknown("variant", name, variants))),
            },
            Json::Object(members) => match members.as_slice() {
                [(name, value)] => {
                    let data = self.key(name, value);
                    match index(name) {
                        Some(i) => Ok((i, Some(data))),
                        None => Err(data.error(unknown("variant", name, variants))),
                    }
                }
                _ => Err(self.error("invalid value: map, expected a map with a single key")),
            },
            _ => Err(self.invalid_type(expected)),
        }
    }

    /// An enum of unit variants only: the variant's index (see [`At::variant`]).
    pub fn unit_variant(
        &self,
        expected: &str,
        variants: &'static [&'static str],
    ) -> Result<usize, PathError> {
        let (i, data) = self.variant(expected, variants)?;
        match data {
            Some(data) if *data.value != Json::Null => Err(data.invalid_type("unit")),
            _ => Ok(i),
        }
    }
}

/// The members of an object read as a struct (`deny_unknown_fields`), found by name in one pass,
/// then read field by field in declaration order: a struct's reader is its list of fields,
/// with no dispatch per member and no slot per field. Errors are kept, not returned, until
/// [`Fields::finish`]: the first in document order wins, as when members were read in order
/// (an unknown or repeated name stops the pass there), then the first missing field in the
/// order the reader asks for them.
pub struct Fields<'j, 's> {
    object: At<'j, 's>,
    names: &'static [&'static str],
    /// Per name of `names`: the position of its member in the object and its value.
    found: Vec<Option<(usize, &'j Json)>>,
    /// The error to report and the position of its member (`usize::MAX` for a missing field).
    error: Option<(usize, PathError)>,
}

impl<'j, 's> At<'j, 's> {
    /// The members of an object that is the struct `expected` (`struct RawRule`) with fields
    /// `names`, for a reader to take one by one (see [`Fields`]).
    #[inline(never)]
    pub fn fields(
        &self,
        expected: &str,
        names: &'static [&'static str],
    ) -> Result<Fields<'j, 's>, PathError> {
        let Json::Object(members) = self.value else {
            return Err(self.invalid_type(expected));
        };
        let mut found = vec![None; names.len()];
        let mut error = None;
        for (position, (name, value)) in members.iter().enumerate() {
            let slot = names
                .iter()
                .position(|n| n == name)
                .and_then(|i| found.get_mut(i));
            match slot {
                None => {
                    let reason = unknown("field", name, names);
                    error = Some((position, self.key(name, value).error(reason)));
                    break;
                }
                Some(Some(_)) => {
                    error = Some((position, self.duplicate(name)));
                    break;
                }
                Some(slot) => *slot = Some((position, value)),
            }
        }
        Ok(Fields {
            object: *self,
            names,
            found,
            error,
        })
    }

    #[cold]
    #[inline(never)]
    fn duplicate(&self, name: &str) -> PathError {
        self.error(format!("duplicate field `{name}`"))
    }
}

impl Fields<'_, '_> {
    /// Field `name` if present (`None` when absent, or unreadable: its error is kept).
    // Not inlined: one copy per field type, shared by every field of that type.
    #[inline(never)]
    pub fn get<T: ReadJson>(&mut self, name: &'static str) -> Option<T> {
        let (position, value) = self.member(name)?;
        let read = T::read_json(At {
            value,
            at: Segment::Key(&self.object.at, name),
        });
        match read {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(position, e);
                None
            }
        }
    }

    /// Field `name`, which must be there (`missing field `name``; a placeholder meanwhile).
    pub fn required<T: ReadJson + Default>(&mut self, name: &'static str) -> T {
        self.require(name).unwrap_or_default()
    }

    /// As [`Fields::required`], for a type with no default: `placeholder` stands in for a
    /// field that is missing or wrong (the reader returns the error, never the placeholder).
    pub fn required_or<T: ReadJson>(&mut self, name: &'static str, placeholder: T) -> T {
        self.require(name).unwrap_or(placeholder)
    }

    #[inline(never)]
    fn require<T: ReadJson>(&mut self, name: &'static str) -> Option<T> {
        if self.member(name).is_none() {
            self.missing(name);
        }
        self.get(name)
    }

    /// `value`, the struct built from the fields, unless an error was kept on the way.
    pub fn finish<T>(self, value: T) -> Result<T, PathError> {
        match self.error {
            None => Ok(value),
            Some((_, e)) => Err(e),
        }
    }

    /// The position and value of the member holding field `name`.
    #[inline(never)]
    fn member(&self, name: &str) -> Option<(usize, &'_ Json)> {
        let i = self.names.iter().position(|n| *n == name)?;
        *self.found.get(i)?
    }

    /// Keeps `e`, raised in the member at `position`, when it comes first in the document.
    #[cold]
    #[inline(never)]
    fn fail(&mut self, position: usize, e: PathError) {
        if self.error.as_ref().is_none_or(|(p, _)| position < *p) {
            self.error = Some((position, e));
        }
    }

    #[cold]
    #[inline(never)]
    fn missing(&mut self, name: &str) {
        if self.error.is_none() {
            self.error = Some((usize::MAX, self.object.missing(name)));
        }
    }
}

impl<'j, 's> Member<'j, 's> {
    /// Reads the member into `slot`; a member already read is serde's `duplicate field`, named
    /// at the object.
    // Not inlined: one copy per member type rather than one per field of every raw type.
    #[inline(never)]
    pub fn read<T: ReadJson>(&self, slot: &mut Option<T>) -> Result<(), PathError> {
        if slot.is_some() {
            return Err(self.duplicate());
        }
        *slot = Some(T::read_json(self.value)?);
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn duplicate(&self) -> PathError {
        self.object
            .error(format!("duplicate field `{}`", self.name))
    }

    /// The member's value.
    pub fn value(&self) -> At<'j, 's> {
        self.value
    }

    /// The object the member is in.
    pub fn object(&self) -> At<'j, 's> {
        self.object
    }
}

/// serde's `unknown field `x`, expected one of `a`, `b`, `c`` (or `variant`).
#[cold]
#[inline(never)]
fn unknown(kind: &str, name: &str, expected: &[&str]) -> String {
    let mut out = format!("unknown {kind} `{name}`, ");
    match expected {
        [] => {
            let _ = write!(out, "there are no {kind}s");
        }
        [one] => {
            let _ = write!(out, "expected `{one}`");
        }
        [a, b] => {
            let _ = write!(out, "expected `{a}` or `{b}`");
        }
        all => {
            out.push_str("expected one of ");
            for (i, name) in all.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "`{name}`");
            }
        }
    }
    out
}

/// What a value is, in serde's words (`integer `7``, `string "x"`, `map`).
struct Unexpected<'j>(&'j Json);

impl std::fmt::Display for Unexpected<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Json::Null => f.write_str("unit value"),
            Json::Bool(b) => write!(f, "boolean `{b}`"),
            Json::U64(v) => write!(f, "integer `{v}`"),
            Json::I64(v) => write!(f, "integer `{v}`"),
            Json::F64(v) => {
                let text = super::float::display(*v);
                let point = if v.is_finite() && !text.contains('.') {
                    ".0"
                } else {
                    ""
                };
                write!(f, "floating point `{text}{point}`")
            }
            Json::Str(s) => write!(f, "string {}", crate::error::Quoted(s)),
            Json::Array(_) => f.write_str("sequence"),
            Json::Object(_) => f.write_str("map"),
        }
    }
}

impl ReadJson for String {
    fn read_json(at: At<'_, '_>) -> Result<String, PathError> {
        at.string().map(str::to_string)
    }
}

impl ReadJson for bool {
    fn read_json(at: At<'_, '_>) -> Result<bool, PathError> {
        match at.value {
            Json::Bool(b) => Ok(*b),
            _ => Err(at.invalid_type("a boolean")),
        }
    }
}

impl ReadJson for f64 {
    fn read_json(at: At<'_, '_>) -> Result<f64, PathError> {
        #[allow(clippy::cast_precision_loss)]
        match at.value {
            Json::F64(v) => Ok(*v),
            Json::U64(v) => Ok(*v as f64),
            Json::I64(v) => Ok(*v as f64),
            _ => Err(at.invalid_type("f64")),
        }
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl ReadJson for $t {
            fn read_json(at: At<'_, '_>) -> Result<$t, PathError> {
                let v = at.unsigned(<$t>::MAX as u64, stringify!($t))?;
                <$t>::try_from(v).map_err(|_| at.invalid_type(stringify!($t)))
            }
        }
    )*};
}

unsigned!(u16, u32, u64, usize);

impl<T: ReadJson> ReadJson for Vec<T> {
    fn read_json(at: At<'_, '_>) -> Result<Vec<T>, PathError> {
        let mut out = Vec::new();
        at.elements(&mut |item| {
            out.push(T::read_json(item)?);
            Ok(())
        })?;
        Ok(out)
    }
}

impl<T: ReadJson> ReadJson for Option<T> {
    fn read_json(at: At<'_, '_>) -> Result<Option<T>, PathError> {
        match at.value {
            Json::Null => Ok(None),
            _ => T::read_json(at).map(Some),
        }
    }
}

impl<T: ReadJson> ReadJson for Box<T> {
    fn read_json(at: At<'_, '_>) -> Result<Box<T>, PathError> {
        T::read_json(at).map(Box::new)
    }
}

/// A map from names; a name written twice keeps its last value, as serde's map does.
impl<T: ReadJson> ReadJson for BTreeMap<String, T> {
    fn read_json(at: At<'_, '_>) -> Result<BTreeMap<String, T>, PathError> {
        let mut out = BTreeMap::new();
        at.each_member("a map", &mut |m| {
            out.insert(m.name.to_string(), T::read_json(m.value)?);
            Ok(())
        })?;
        Ok(out)
    }
}

/// An object read as a map from names: its members in name order, a name written twice keeping
/// its last value, as serde read a `BTreeMap<String, T>`. A sorted list rather than a map: the
/// policy only walks these in order, and a `BTreeMap`'s insert cost the module some 3 KB of
/// Wasm per value type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByName<T>(pub Vec<(String, T)>);

impl<T> Default for ByName<T> {
    fn default() -> Self {
        ByName(Vec::new())
    }
}

impl<T> ByName<T> {
    /// How many names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no name.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names and values, in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, (String, T)> {
        self.0.iter()
    }
}

impl<T> IntoIterator for ByName<T> {
    type Item = (String, T);
    type IntoIter = std::vec::IntoIter<(String, T)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a ByName<T> {
    type Item = &'a (String, T);
    type IntoIter = std::slice::Iter<'a, (String, T)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: ReadJson> ReadJson for ByName<T> {
    fn read_json(at: At<'_, '_>) -> Result<ByName<T>, PathError> {
        let mut values = Vec::new();
        at.each_member("a map", &mut |m| {
            values.push(Some(T::read_json(m.value)?));
            Ok(())
        })?;
        let Json::Object(members) = at.value else {
            return Ok(ByName(Vec::new()));
        };
        let order = name_order(members);
        let mut out = Vec::with_capacity(order.len());
        for i in order.into_iter().map(|i| i as usize) {
            if let (Some((name, _)), Some(value)) =
                (members.get(i), values.get_mut(i).and_then(Option::take))
            {
                out.push((name.clone(), value));
            }
        }
        Ok(ByName(out))
    }
}

/// The positions of an object's members in name order, keeping the last of a repeated name.
fn name_order(members: &[(String, Json)]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..u32::try_from(members.len()).unwrap_or(u32::MAX)).collect();
    let name = |i: u32| members.get(i as usize).map_or("", |(n, _)| n.as_str());
    crate::stable_sort::stable_sort_positions(&mut order, &|a, b| name(a) < name(b));
    // A repeated name's members are adjacent now, in document order: the last one stays.
    let mut unique: Vec<u32> = Vec::with_capacity(order.len());
    for i in order {
        match unique.last_mut() {
            Some(last) if name(*last) == name(i) => *last = i,
            _ => unique.push(i),
        }
    }
    unique
}

/// Any value, unread (serde's `IgnoredAny`): a section named only to be present.
impl ReadJson for () {
    fn read_json(_: At<'_, '_>) -> Result<(), PathError> {
        Ok(())
    }
}
