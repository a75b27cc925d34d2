//! A zero-copy view of a JSON object: top-level keys parsed, values kept as raw slices of
//! the request body, so that unknown fields pass through byte for byte.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Why a body is not a JSON object we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectError {
    /// Not JSON at all; the parser's message (with its position).
    NotJson(String),
    /// JSON, but not an object.
    NotObject,
    /// The same key twice: refused, so that no two parsers can disagree about its value.
    DuplicateKey(String),
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::NotJson(e) => write!(f, "request body is not valid JSON: {e}"),
            ObjectError::NotObject => f.write_str("request body must be a JSON object"),
            ObjectError::DuplicateKey(k) => write!(f, "duplicate key {k:?} in request body"),
        }
    }
}

/// The top level of a JSON object. Keys are unescaped (so `"api\u005fbase"` is seen as
/// `api_base`); values are raw slices of the input.
#[derive(Debug, Default)]
pub struct JsonObject<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> de::Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(Cow<'de, str>, &'de RawValue)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    if entries.iter().any(|(existing, _)| *existing == k) {
                        return Err(de::Error::custom(format_args!("\u{0}duplicate:{k}")));
                    }
                    entries.push((k, v));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

impl<'a> JsonObject<'a> {
    /// Parses the top level of `body`, which must be one JSON object.
    pub fn parse(body: &'a [u8]) -> Result<Self, ObjectError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        match first {
            None => return Err(ObjectError::NotJson("empty body".into())),
            Some(b'{') => {}
            Some(_) => {
                // Tell "valid JSON but not an object" apart from "not JSON".
                return match serde_json::from_slice::<de::IgnoredAny>(body) {
                    Ok(_) => Err(ObjectError::NotObject),
                    Err(e) => Err(ObjectError::NotJson(e.to_string())),
                };
            }
        }
        match serde_json::from_slice::<Entries<'a>>(body) {
            Ok(Entries(entries)) => Ok(Self { entries }),
            Err(e) => {
                let msg = e.to_string();
                match msg
                    .strip_prefix("\u{0}duplicate:")
                    .and_then(|rest| rest.rsplit_once(" at line "))
                {
                    Some((key, _)) => Err(ObjectError::DuplicateKey(key.to_owned())),
                    None => Err(ObjectError::NotJson(msg)),
                }
            }
        }
    }

    /// The raw value of a key.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Removes a key; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| k != key);
        self.entries.len() != before
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Serializes the object again, with `overrides` (key, raw JSON value) replacing or adding
    /// values. Untouched values are copied byte for byte.
    pub fn to_vec_with(&self, overrides: &[(&str, &str)]) -> Vec<u8> {
        let size: usize = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum::<usize>()
            + overrides
                .iter()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>()
            + 2;
        let mut out = Vec::with_capacity(size);
        out.push(b'{');
        let mut first = true;
        let mut push = |out: &mut Vec<u8>, k: &str, v: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_json_string(out, k);
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        };
        for (k, v) in &self.entries {
            let value = overrides
                .iter()
                .find(|(ok, _)| *ok == k.as_ref())
                .map_or(v.get(), |(_, ov)| *ov);
            push(&mut out, k, value);
        }
        for (k, v) in overrides {
            if self.get(k).is_none() {
                push(&mut out, k, v);
            }
        }
        out.push(b'}');
        out
    }
}

/// Writes `s` as a JSON string literal.
pub(crate) fn write_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A JSON string literal for `s`, for use as a raw override value.
pub fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_json_string(&mut out, s);
    // Only ASCII escapes were added to valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_unknown_fields_byte_for_byte() {
        let body = br#"{"model":"a","x":{"deep":[1,2.50,"\u00e9"]},"messages":[]}"#;
        let obj = JsonObject::parse(body).unwrap();
        assert_eq!(obj.to_vec_with(&[]), body.to_vec());
        let out = obj.to_vec_with(&[("model", "\"b\""), ("new", "true")]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"b","x":{"deep":[1,2.50,"\u00e9"]},"messages":[],"new":true}"#
        );
    }

    #[test]
    fn escaped_keys_are_seen_unescaped() {
        let mut obj = JsonObject::parse(br#"{"api\u005fbase":"http://evil","k\"q":1}"#).unwrap();
        assert!(obj.get("api_base").is_some());
        assert!(obj.remove("api_base"));
        assert_eq!(obj.to_vec_with(&[]), br#"{"k\"q":1}"#.to_vec());
    }

    #[test]
    fn refuses_duplicates_non_objects_and_garbage() {
        assert_eq!(
            JsonObject::parse(br#"{"a":1,"a":2}"#).unwrap_err(),
            ObjectError::DuplicateKey("a".into())
        );
        assert_eq!(
            JsonObject::parse(br#"{"a":1,"\u0061":2}"#).unwrap_err(),
            ObjectError::DuplicateKey("a".into())
        );
        assert_eq!(
            JsonObject::parse(b"[1]").unwrap_err(),
            ObjectError::NotObject
        );
        assert!(matches!(
            JsonObject::parse(b"{not json").unwrap_err(),
            ObjectError::NotJson(_)
        ));
        assert!(matches!(
            JsonObject::parse(b"").unwrap_err(),
            ObjectError::NotJson(_)
        ));
        assert!(matches!(
            JsonObject::parse(b"{\"a\":1} x").unwrap_err(),
            ObjectError::NotJson(_)
        ));
    }

    #[test]
    fn json_string_escapes() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
        let parsed: String = serde_json::from_str(&json_string("x\u{7f}\t\"")).unwrap();
        assert_eq!(parsed, "x\u{7f}\t\"");
    }
}
