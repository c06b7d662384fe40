//! Reads a JSON document into a serde type and names the JSON path of any error
//! (`rules[1].nmae`), with one small deserializer instead of a generic path-tracking wrapper.
//!
//! The document is parsed once into [`Json`], a tree that keeps object members in document order
//! (so a struct still sees a duplicate field and errors come in the order they are written); the
//! target type is then read from that tree by `At`, which knows where it stands and stamps that
//! path on any error raised at or below it. Why not a wrapper around serde_json's streaming
//! deserializer: a wrapper is instantiated once per visitor of every raw type, and in the module
//! that cost most of a configure-time megabyte of Wasm that every sidecar compiles; here
//! serde_json's parser is instantiated once (for [`Json`]) and each visitor once (for `At`).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// A parsed JSON document; objects keep their members in document order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// Any other number.
    F64(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, members in document order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses `bytes` (one JSON value, nothing after it but whitespace).
    pub fn parse(bytes: &[u8]) -> Result<Json, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Reads `T` from this value, which stands at `path` (`""` for a whole document); the error
    /// names the JSON path of the value at fault.
    pub fn read<T: de::DeserializeOwned>(&self, path: &str) -> Result<T, PathError> {
        let root = Segment::Root(path);
        T::deserialize(At {
            value: self,
            at: &root,
        })
    }
}

impl<'de> de::Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::I64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::F64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Json>()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}

/// A serde error and the JSON path of the value it was raised at (`None` until it reaches the
/// deserializer of that value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// `rules[1].nmae`; empty for the document itself.
    pub path: Option<String>,
    /// serde's message (`unknown field ...`, `invalid type: ...`).
    pub reason: String,
}

impl PathError {
    /// Names `at` as the place of the error unless a deeper place was named already.
    fn at(mut self, at: &Segment<'_>) -> PathError {
        if self.path.is_none() {
            let mut path = String::new();
            at.write(&mut path);
            self.path = Some(path);
        }
        self
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.as_deref() {
            None | Some("") => f.write_str(&self.reason),
            Some(path) => write!(f, "{path}: {}", self.reason),
        }
    }
}

impl std::error::Error for PathError {}

impl de::Error for PathError {
    fn custom<T: fmt::Display>(msg: T) -> PathError {
        PathError {
            path: None,
            reason: msg.to_string(),
        }
    }
}

/// Where a value stands, as a chain back to the root (rendered only when an error needs it).
enum Segment<'s> {
    /// The root, with the path it stands at (`mirror` for a section of a larger document).
    Root(&'s str),
    /// Member `key` of the object at the parent.
    Key(&'s Segment<'s>, &'s str),
    /// Element `index` of the array at the parent.
    Index(&'s Segment<'s>, usize),
}

impl Segment<'_> {
    /// Appends this path in the format of [`crate::ConfigError::path`]: `a.b[2].c`.
    fn write(&self, out: &mut String) {
        match self {
            Segment::Root(path) => out.push_str(path),
            Segment::Key(parent, key) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(parent, index) => {
                parent.write(out);
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
}

/// The deserializer of one value of the tree, knowing where it stands.
struct At<'de, 's> {
    value: &'de Json,
    at: &'s Segment<'s>,
}

impl<'de> Deserializer<'de> for At<'de, '_> {
    type Error = PathError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        let at = self.at;
        let read: Result<V::Value, PathError> = match self.value {
            Json::Null => visitor.visit_unit(),
            Json::Bool(v) => visitor.visit_bool(*v),
            Json::U64(v) => visitor.visit_u64(*v),
            Json::I64(v) => visitor.visit_i64(*v),
            Json::F64(v) => visitor.visit_f64(*v),
            Json::Str(v) => visitor.visit_borrowed_str(v),
            Json::Array(items) => {
                let mut seq = Elements {
                    items: items.iter(),
                    next: 0,
                    at,
                };
                visitor
                    .visit_seq(&mut seq)
                    .and_then(|value| match seq.items.len() {
                        0 => Ok(value),
                        left => Err(de::Error::invalid_length(
                            seq.next + left,
                            &"fewer elements in array",
                        )),
                    })
            }
            Json::Object(members) => {
                let mut map = Members {
                    members: members.iter(),
                    value: None,
                    at,
                };
                visitor
                    .visit_map(&mut map)
                    .and_then(|value| match map.members.len() {
                        0 => Ok(value),
                        left => Err(de::Error::invalid_length(
                            members.len() - left,
                            &"fewer elements in map",
                        )),
                    })
            }
        };
        read.map_err(|e| e.at(at))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        let at = self.at;
        let read: Result<V::Value, PathError> = match self.value {
            Json::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        };
        read.map_err(|e| e.at(at))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        let at = self.at;
        visitor.visit_newtype_struct(self).map_err(|e| e.at(at))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        let at = self.at;
        let read: Result<V::Value, PathError> = match self.value {
            // A unit variant: `"lowercase"`.
            Json::Str(variant) => visitor.visit_enum(variant.as_str().into_deserializer()),
            // Any other variant: `{"regex": "..."}`.
            Json::Object(members) => match members.as_slice() {
                [(variant, value)] => visitor.visit_enum(Variant { variant, value, at }),
                _ => Err(de::Error::invalid_value(
                    de::Unexpected::Map,
                    &"a map with a single key",
                )),
            },
            _ => self.deserialize_any(visitor),
        };
        read.map_err(|e| e.at(at))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// The elements of an array, each at `[index]`.
struct Elements<'de, 's> {
    items: std::slice::Iter<'de, Json>,
    next: usize,
    at: &'s Segment<'s>,
}

impl<'de> de::SeqAccess<'de> for &mut Elements<'de, '_> {
    type Error = PathError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, PathError> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        let at = Segment::Index(self.at, self.next);
        self.next += 1;
        seed.deserialize(At { value, at: &at }).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The members of an object, each value at `.key`; an error reading a key (an unknown field)
/// names the key itself.
struct Members<'de, 's> {
    members: std::slice::Iter<'de, (String, Json)>,
    value: Option<(&'de str, &'de Json)>,
    at: &'s Segment<'s>,
}

impl<'de> de::MapAccess<'de> for &mut Members<'de, '_> {
    type Error = PathError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, PathError> {
        let Some((key, value)) = self.members.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(Key(key))
            .map(Some)
            .map_err(|e| e.at(&Segment::Key(self.at, key)))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, PathError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("a map value was read before its key"));
        };
        seed.deserialize(At {
            value,
            at: &Segment::Key(self.at, key),
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len())
    }
}

/// An object key: a string (serde's derives read field names from it).
struct Key<'de>(&'de str);

impl<'de> Deserializer<'de> for Key<'de> {
    type Error = PathError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_borrowed_str(self.0)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// The one member of an object that spells an enum variant with data.
struct Variant<'de, 's> {
    variant: &'de str,
    value: &'de Json,
    at: &'s Segment<'s>,
}

impl<'de, 's> de::EnumAccess<'de> for Variant<'de, 's> {
    type Error = PathError;
    type Variant = VariantValue<'de, 's>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, VariantValue<'de, 's>), PathError> {
        let tag = seed
            .deserialize(Key(self.variant))
            .map_err(|e| e.at(&Segment::Key(self.at, self.variant)))?;
        Ok((
            tag,
            VariantValue {
                variant: self.variant,
                value: self.value,
                at: self.at,
            },
        ))
    }
}

/// The data of an enum variant, at `.variant`.
struct VariantValue<'de, 's> {
    variant: &'de str,
    value: &'de Json,
    at: &'s Segment<'s>,
}

impl<'de> VariantValue<'de, '_> {
    fn read<T, F>(self, read: F) -> Result<T, PathError>
    where
        F: FnOnce(At<'de, '_>) -> Result<T, PathError>,
    {
        read(At {
            value: self.value,
            at: &Segment::Key(self.at, self.variant),
        })
    }
}

impl<'de> de::VariantAccess<'de> for VariantValue<'de, '_> {
    type Error = PathError;

    fn unit_variant(self) -> Result<(), PathError> {
        self.read(|at| de::Deserialize::deserialize(at))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, PathError> {
        self.read(|at| seed.deserialize(at))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.read(|at| at.deserialize_any(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.read(|at| at.deserialize_any(visitor))
    }
}
