//! Reads a JSON document into the raw policy types and names the JSON path of any error
//! (`rules[1].nmae`).
//!
//! The document is parsed once into [`Json`] (`parse`, no serde), a tree that keeps object
//! members in document order (so a struct still sees a duplicate field and errors come in the
//! order they are written); each raw type is then read from that tree by its [`ReadJson`] impl
//! (`read`), which knows where it stands and names that path in any error. With the `serde`
//! feature (the CLI's), any serde type can also be read from the tree the same way (`deserialize`).

use std::fmt;

#[cfg(any(test, feature = "serde"))]
mod deserialize;
pub(crate) mod float;
mod parse;
mod read;
#[cfg(test)]
mod tests;

pub use parse::ParseError;
pub use read::{At, ByName, Fields, Member, ReadJson};

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
    pub fn parse(bytes: &[u8]) -> Result<Json, ParseError> {
        parse::parse(bytes)
    }

    /// Reads `T` from this value, which stands at `path` (`""` for a whole document); the error
    /// names the JSON path of the value at fault.
    pub fn read<T: ReadJson>(&self, path: &str) -> Result<T, PathError> {
        At::root(self, path)
    }
}

/// A reading error and the JSON path of the value it was raised at (`None` only while a serde
/// error has not yet reached the deserializer of that value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// `rules[1].nmae`; empty for the document itself.
    pub path: Option<String>,
    /// serde's words (`unknown field ...`, `invalid type: ...`).
    pub reason: String,
}

impl PathError {
    /// Names `at` as the place of the error unless a deeper place was named already.
    #[cfg(any(test, feature = "serde"))]
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

/// Where a value stands, as a chain back to the root (rendered only when an error needs it).
#[derive(Clone, Copy)]
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
