//! Reads any serde type from a parsed [`Json`] tree, naming the JSON path of any error: for the
//! CLI's own record types (`meshsight-cli` turns this on with the `serde` feature). The policy's
//! raw types are read by [`super::ReadJson`] instead, so the module carries none of this.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::{Json, PathError, Segment};

impl Json {
    /// Reads serde type `T` from this value, which stands at `path` (`""` for a whole
    /// document); the error names the JSON path of the value at fault.
    pub fn deserialize<T: de::DeserializeOwned>(&self, path: &str) -> Result<T, PathError> {
        let root = Segment::Root(path);
        T::deserialize(At {
            value: self,
            at: &root,
        })
    }
}

impl de::Error for PathError {
    fn custom<T: fmt::Display>(msg: T) -> PathError {
        PathError {
            path: None,
            reason: msg.to_string(),
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
