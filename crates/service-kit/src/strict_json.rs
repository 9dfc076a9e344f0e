//! A `Deserializer` adapter that only takes a JSON object where a struct is expected.
//!
//! serde's derived `Deserialize` for a struct (and a struct variant) also takes a sequence, the
//! fields in declaration order, and `serde_json` hands it one when the body has `[` there. So
//! `"seo": [null, null]` filled a struct of two optional fields, although every OpenAPI document
//! we publish says that field is an object. [`Strict`] forwards everything to the deserializer
//! it wraps, except that it asks for a map where a struct is asked for (so `[` is a type error,
//! `invalid type: sequence, expected an object`), and it wraps again whatever it hands on —
//! visitors, seeds, sequence/map/enum/variant access — so the rule holds at every depth. The
//! wrappers are plain newtypes over the wrapped value: no allocation, nothing at run time beyond
//! what the inlined forwarding costs.
//!
//! An internally tagged enum (`#[serde(tag = "…")]`) is refused an array too (serde would take
//! the tag from its first element).
//!
//! What it cannot reach: content serde buffers first and deserialises later through its own
//! private deserializers — the fields of a struct `#[serde(flatten)]`ed into another, the
//! contents of an internally tagged enum's variant, the variants of a `#[serde(untagged)]` enum.
//! A struct nested in those still takes an array, as before.

use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error as _, Expected, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

/// A deserializer that refuses a sequence where a struct or struct variant is expected.
#[derive(Debug, Clone, Copy)]
pub struct Strict<D>(pub D);

/// Forwards to the wrapped visitor, seed or access, wrapping what it hands on in turn.
#[derive(Debug, Clone, Copy)]
struct Wrap<X>(X);

/// The visitor of a struct (or struct variant): forwards everything but a sequence, and expects
/// "an object".
#[derive(Debug, Clone, Copy)]
struct ObjectOnly<V>(V);

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {
        $(
            #[inline]
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.0.$method(Wrap(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_ignored_any,
        deserialize_identifier,
    );

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    /// The point of it all: a struct is read as a map, so only `{…}` is taken.
    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(ObjectOnly(visitor))
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap(visitor))
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            #[inline]
            fn $method<E: serde::de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.0.$method(v)
            }
        )*
    };
}

/// The visits both visitors pass on unchanged: every scalar, `unit`/`none`, and `some`, newtype
/// structs, maps and enums with what is inside them kept strict.
macro_rules! forward_common_visits {
    () => {
        forward_visit!(
            visit_bool(bool),
            visit_i8(i8),
            visit_i16(i16),
            visit_i32(i32),
            visit_i64(i64),
            visit_i128(i128),
            visit_u8(u8),
            visit_u16(u16),
            visit_u32(u32),
            visit_u64(u64),
            visit_u128(u128),
            visit_f32(f32),
            visit_f64(f64),
            visit_char(char),
            visit_str(&str),
            visit_borrowed_str(&'de str),
            visit_string(String),
            visit_bytes(&[u8]),
            visit_borrowed_bytes(&'de [u8]),
            visit_byte_buf(Vec<u8>),
        );

        #[inline]
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_unit()
        }

        #[inline]
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_none()
        }

        #[inline]
        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            self.0.visit_some(Strict(deserializer))
        }

        #[inline]
        fn visit_newtype_struct<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            self.0.visit_newtype_struct(Strict(deserializer))
        }

        #[inline]
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            self.0.visit_map(Wrap(map))
        }

        #[inline]
        fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
            self.0.visit_enum(Wrap(data))
        }
    };
}

impl<'de, X: Visitor<'de>> Visitor<'de> for Wrap<X> {
    type Value = X::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(formatter)
    }

    forward_common_visits!();

    /// A sequence, except where an internally tagged enum is expected: serde would take the tag
    /// from the first element and the variant's fields from the rest, but every such enum is an
    /// object in the documents (`{"type": "…", …}`).
    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        if expects_internally_tagged_enum(&self.0) {
            return Err(A::Error::invalid_type(Unexpected::Seq, &AnObject));
        }
        self.0.visit_seq(Wrap(seq))
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for ObjectOnly<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object")
    }

    // Everything but a map or a sequence is refused by the wrapped visitor as it always was
    // (derived struct visitors take nothing else); forwarded so a hand-written `Deserialize` that
    // asks for a struct and takes something else keeps doing so.
    forward_common_visits!();

    /// A sequence where an object is expected is the shape error this module exists for.
    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        Err(A::Error::invalid_type(Unexpected::Seq, &AnObject))
    }
}

/// Whether `visitor` is the one serde_derive hands `deserialize_any` for an internally tagged
/// enum. It is private to serde, so it is known by what it expects: serde_derive's
/// `"internally tagged enum <Name>"` (an enum with its own `#[serde(expecting = "…")]` is not
/// recognised). Compared as it is written, without allocating.
fn expects_internally_tagged_enum(visitor: &dyn Expected) -> bool {
    struct Prefix {
        rest: &'static str,
    }
    impl fmt::Write for Prefix {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let n = s.len().min(self.rest.len());
            if s.as_bytes()[..n] != self.rest.as_bytes()[..n] {
                return Err(fmt::Error);
            }
            self.rest = &self.rest[n..];
            // Matched the whole prefix: nothing more to read.
            if self.rest.is_empty() {
                return Err(fmt::Error);
            }
            Ok(())
        }
    }
    let mut prefix = Prefix {
        rest: "internally tagged enum ",
    };
    let _ = fmt::write(&mut prefix, format_args!("{visitor}"));
    prefix.rest.is_empty()
}

/// What a struct, struct variant or internally tagged enum is in JSON.
struct AnObject;

impl Expected for AnObject {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object")
    }
}

impl<'de, X: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<X> {
    type Value = X::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<X::Value, D::Error> {
        self.0.deserialize(Strict(deserializer))
    }
}

impl<'de, X: SeqAccess<'de>> SeqAccess<'de> for Wrap<X> {
    type Error = X::Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, X::Error> {
        self.0.next_element_seed(Wrap(seed))
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, X: MapAccess<'de>> MapAccess<'de> for Wrap<X> {
    type Error = X::Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, X::Error> {
        self.0.next_key_seed(Wrap(seed))
    }

    #[inline]
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, X::Error> {
        self.0.next_value_seed(Wrap(seed))
    }

    #[inline]
    fn next_entry_seed<K: DeserializeSeed<'de>, T: DeserializeSeed<'de>>(
        &mut self,
        key: K,
        value: T,
    ) -> Result<Option<(K::Value, T::Value)>, X::Error> {
        self.0.next_entry_seed(Wrap(key), Wrap(value))
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, X: EnumAccess<'de>> EnumAccess<'de> for Wrap<X> {
    type Error = X::Error;
    type Variant = Wrap<X::Variant>;

    #[inline]
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), X::Error> {
        let (value, variant) = self.0.variant_seed(Wrap(seed))?;
        Ok((value, Wrap(variant)))
    }
}

impl<'de, X: VariantAccess<'de>> VariantAccess<'de> for Wrap<X> {
    type Error = X::Error;

    #[inline]
    fn unit_variant(self) -> Result<(), X::Error> {
        self.0.unit_variant()
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, X::Error> {
        self.0.newtype_variant_seed(Wrap(seed))
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, X::Error> {
        self.0.tuple_variant(len, Wrap(visitor))
    }

    /// A struct variant takes an object only, like a struct.
    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, X::Error> {
        self.0.struct_variant(fields, ObjectOnly(visitor))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::Deserialize;
    use serde_json::{Map, Value, json};

    use crate::extract::parse_json;
    use crate::merge_patch::nullable;
    use crate::problem::{FieldError, Problem};

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Seo {
        meta_title: Option<String>,
        meta_description: Option<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Post {
        title: String,
        seo: Seo,
        #[serde(default)]
        tags: Vec<Tag>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Tag {
        name: String,
    }

    fn field_errors(problem: &Problem) -> Vec<(&str, &str)> {
        problem
            .errors
            .iter()
            .map(|FieldError { field, message }| (field.as_str(), message.as_str()))
            .collect()
    }

    #[test]
    fn an_array_for_a_nested_struct_is_422_naming_the_field() {
        let problem = parse_json::<Post>(br#"{"title": "Oak", "seo": [null, null]}"#).unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(
            field_errors(&problem),
            vec![("seo", "invalid type: sequence, expected an object")]
        );
        // Any depth, through a Vec, path and all.
        let problem =
            parse_json::<Post>(br#"{"title": "Oak", "seo": {}, "tags": [{"name": "a"}, ["b"]]}"#)
                .unwrap_err();
        assert_eq!(
            field_errors(&problem),
            vec![("tags[1]", "invalid type: sequence, expected an object")]
        );
    }

    #[test]
    fn serde_alone_fills_a_struct_from_an_array() {
        // What this module is for: without it both findings were accepted.
        let seo: Seo = serde_json::from_slice(b"[null, null]").unwrap();
        assert_eq!(
            seo,
            Seo {
                meta_title: None,
                meta_description: None
            }
        );
        let post: Post =
            serde_json::from_value(json!({"title": "Oak", "seo": [null, null]})).unwrap();
        assert_eq!(post.seo.meta_title, None);
    }

    #[test]
    fn an_array_for_the_whole_body_is_422() {
        let problem = parse_json::<Seo>(b"[null, null]").unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(
            field_errors(&problem),
            vec![("", "invalid type: sequence, expected an object")]
        );
        // Still a shape error, not a syntax error, on the integral-floats path too.
        let problem = parse_json::<Post>(br#"["Oak", [1.0]]"#).unwrap_err();
        assert_eq!(problem.status, 422);
        let problem = parse_json::<Post>(br#"{"title": "Oak", "seo": [1.0, null]}"#).unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors[0].field, "seo");
    }

    #[test]
    fn objects_still_parse_and_other_errors_keep_their_paths() {
        let post: Post = parse_json(
            br#"{"title": "Oak", "seo": {"metaTitle": "T", "metaDescription": null},
                 "tags": [{"name": "a"}]}"#,
        )
        .unwrap();
        assert_eq!(
            post,
            Post {
                title: "Oak".into(),
                seo: Seo {
                    meta_title: Some("T".into()),
                    meta_description: None,
                },
                tags: vec![Tag { name: "a".into() }],
            }
        );
        let problem =
            parse_json::<Post>(br#"{"title": "Oak", "seo": {"metaTitle": 5}}"#).unwrap_err();
        assert_eq!(
            field_errors(&problem),
            vec![(
                "seo.metaTitle",
                "invalid type: integer `5`, expected a string"
            )]
        );
        let problem = parse_json::<Post>(br#"{"seo": {}}"#).unwrap_err();
        assert_eq!(field_errors(&problem), vec![("title", "is required")]);
        let problem = parse_json::<Post>(br#"{"title": "Oak", "seo": "x"}"#).unwrap_err();
        assert_eq!(
            field_errors(&problem),
            vec![("seo", "invalid type: string \"x\", expected an object")]
        );
        // Sequences that are sequences, maps and plain values are untouched.
        let value: (Vec<u8>, Map<String, Value>, Value) =
            parse_json(br#"[[1, 2], {"a": [1]}, [{"b": null}]]"#).unwrap();
        assert_eq!(
            value,
            (
                vec![1, 2],
                json!({"a": [1]}).as_object().cloned().unwrap(),
                json!([{"b": null}])
            )
        );
        // The integral-floats path still applies inside nested objects.
        #[derive(Debug, PartialEq, Deserialize)]
        struct Outer {
            inner: Inner,
        }
        #[derive(Debug, PartialEq, Deserialize)]
        struct Inner {
            n: i32,
        }
        let outer: Outer = parse_json(br#"{"inner": {"n": 3.0}}"#).unwrap();
        assert_eq!(
            outer,
            Outer {
                inner: Inner { n: 3 }
            }
        );
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Patch {
        #[serde(default, deserialize_with = "nullable")]
        note: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable")]
        seo: Option<Option<Seo>>,
    }

    #[test]
    fn nullable_patch_fields_still_tell_absent_from_null() {
        let patch: Patch = parse_json(br#"{"note": null}"#).unwrap();
        assert_eq!(
            patch,
            Patch {
                note: Some(None),
                seo: None
            }
        );
        let patch: Patch = parse_json(br#"{"note": "n", "seo": {"metaTitle": "T"}}"#).unwrap();
        assert_eq!(patch.note, Some(Some("n".into())));
        assert_eq!(
            patch.seo,
            Some(Some(Seo {
                meta_title: Some("T".into()),
                meta_description: None
            }))
        );
        // The customer-service finding: an array for the whole typed patch.
        let problem = parse_json::<Patch>(b"[null, null]").unwrap_err();
        assert_eq!(
            field_errors(&problem),
            vec![("", "invalid type: sequence, expected an object")]
        );
        // And inside an Option<Option<_>>.
        let problem = parse_json::<Patch>(br#"{"seo": [null, null]}"#).unwrap_err();
        assert_eq!(
            field_errors(&problem),
            vec![("seo", "invalid type: sequence, expected an object")]
        );
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum External {
        Unit,
        Newtype(Tag),
        Tuple(u8, u8),
        Struct { name: String },
    }

    #[test]
    fn externally_tagged_variants_parse_and_struct_variants_take_objects_only() {
        let all: Vec<External> = parse_json(
            br#"["unit", {"newtype": {"name": "a"}}, {"tuple": [1, 2]},
                {"struct": {"name": "b"}}]"#,
        )
        .unwrap();
        assert_eq!(
            all,
            vec![
                External::Unit,
                External::Newtype(Tag { name: "a".into() }),
                External::Tuple(1, 2),
                External::Struct { name: "b".into() },
            ]
        );
        let problem = parse_json::<External>(br#"{"struct": ["b"]}"#).unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(
            problem.errors[0].message,
            "invalid type: sequence, expected an object"
        );
        let problem = parse_json::<External>(br#"{"newtype": ["a"]}"#).unwrap_err();
        assert_eq!(problem.status, 422);
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
    enum Block {
        Text(Tag),
        Image { url: String },
        Divider,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Tag),
        Many { tags: Vec<Tag> },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Flat {
        id: u8,
        #[serde(flatten)]
        tag: Tag,
        #[serde(flatten)]
        rest: Map<String, Value>,
    }

    #[test]
    fn tagged_untagged_and_flattened_shapes_parse_as_before() {
        let blocks: Vec<Block> = parse_json(
            br#"[{"type": "TEXT", "name": "a"}, {"url": "u", "type": "IMAGE"},
                {"type": "DIVIDER"}]"#,
        )
        .unwrap();
        assert_eq!(
            blocks,
            vec![
                Block::Text(Tag { name: "a".into() }),
                Block::Image { url: "u".into() },
                Block::Divider,
            ]
        );
        let problem = parse_json::<Vec<Block>>(br#"[{"type": "TEXT"}]"#).unwrap_err();
        assert_eq!(problem.status, 422);
        // serde alone takes the tag from an array's first element; the documents say object.
        let block: Block = serde_json::from_slice(br#"["TEXT", "a"]"#).unwrap();
        assert_eq!(block, Block::Text(Tag { name: "a".into() }));
        let problem =
            parse_json::<Vec<Block>>(br#"[{"type": "DIVIDER"}, ["TEXT", "a"]]"#).unwrap_err();
        assert_eq!(
            field_errors(&problem),
            vec![("[1]", "invalid type: sequence, expected an object")]
        );
        let problem = parse_json::<Block>(br#"["DIVIDER"]"#).unwrap_err();
        assert_eq!(problem.status, 422);

        let one: OneOrMany = parse_json(br#"{"name": "a"}"#).unwrap();
        assert_eq!(one, OneOrMany::One(Tag { name: "a".into() }));
        let many: OneOrMany = parse_json(br#"{"tags": [{"name": "b"}]}"#).unwrap();
        assert_eq!(
            many,
            OneOrMany::Many {
                tags: vec![Tag { name: "b".into() }]
            }
        );

        let flat: Flat = parse_json(br#"{"id": 1, "name": "a", "x": [1]}"#).unwrap();
        assert_eq!(
            flat,
            Flat {
                id: 1,
                tag: Tag { name: "a".into() },
                rest: json!({"x": [1]}).as_object().cloned().unwrap(),
            }
        );
        let problem = parse_json::<Flat>(br#"[1, "a"]"#).unwrap_err();
        assert_eq!(problem.status, 422);
    }

    #[test]
    fn borrowed_strings_still_borrow() {
        #[derive(Deserialize)]
        struct Borrowed<'a> {
            #[serde(borrow)]
            name: &'a str,
        }
        let bytes = br#"{"name": "oak"}"#;
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value = Borrowed::deserialize(super::Strict(&mut deserializer)).unwrap();
        assert_eq!(value.name, "oak");
    }
}
