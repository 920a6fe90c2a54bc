//! Readers for JSON body fields, for what the derived `Deserialize` reads too loosely or too
//! strictly compared with the JSON Schema the OpenAPI document states:
//!
//! - serde reads a struct from an array (its fields by position); a nested object written as
//!   an array is refused here, as the schema's `"type": "object"` refuses it;
//! - JSON Schema's `integer` is any number without a fraction (`5.0` included), which serde
//!   refuses for an `i64`; such a number is read here as the integer it is.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

/// Hands a struct's visitor to `deserialize_map`, which accepts `{...}` only. Every other
/// request goes through unchanged; nested values are read by the inner deserializer, so error
/// paths stay exact.
struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A struct that must be written as a JSON object.
struct Object<T>(T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(deserializer)).map(Object)
    }
}

/// `#[serde(deserialize_with = "wire::optional_object")]` on an `Option<Struct>` field.
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|Object(value)| value))
}

/// `#[serde(deserialize_with = "wire::objects")]` on a `Vec<Struct>` field.
pub fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(Vec::<Object<T>>::deserialize(deserializer)?
        .into_iter()
        .map(|Object(value)| value)
        .collect())
}

/// An integer that may be written with a zero fraction (`5.0`).
struct Integer(i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Reader;
        impl Visitor<'_> for Reader {
            type Value = Integer;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("i64")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Integer, E> {
                Ok(Integer(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Integer, E> {
                i64::try_from(value)
                    .map(Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Integer, E> {
                // Integers beyond i64 also arrive here, rounded; only the range where every
                // integer is exact (|value| <= 2^53) is read, so none of them slips in.
                const EXACT: f64 = 9_007_199_254_740_992.0;
                if value.fract() == 0.0 && value.abs() <= EXACT {
                    Ok(Integer(value as i64))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(value), &self))
                }
            }
        }
        deserializer.deserialize_any(Reader)
    }
}

/// `#[serde(deserialize_with = "wire::optional_integer")]` on an `Option<i64>` field.
pub fn optional_integer<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Integer>::deserialize(deserializer)?.map(|Integer(value)| value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Point {
        x: f64,
    }

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "optional_object")]
        point: Option<Point>,
        #[serde(default, deserialize_with = "objects")]
        points: Vec<Point>,
        #[serde(default, deserialize_with = "optional_integer")]
        count: Option<i64>,
    }

    fn read(json: &str) -> Result<Body, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    #[test]
    fn nested_objects_must_be_objects() {
        let body = read(r#"{"point": {"x": 1}, "points": [{"x": 2}]}"#).unwrap();
        assert_eq!(body.point, Some(Point { x: 1.0 }));
        assert_eq!(body.points, vec![Point { x: 2.0 }]);
        assert_eq!(read(r#"{"point": null}"#).unwrap().point, None);
        assert!(read(r#"{"point": [1]}"#).is_err());
        assert!(read(r#"{"points": [[2]]}"#).is_err());
    }

    #[test]
    fn integers_may_carry_a_zero_fraction() {
        assert_eq!(read(r#"{"count": 5}"#).unwrap().count, Some(5));
        assert_eq!(read(r#"{"count": 5.0}"#).unwrap().count, Some(5));
        assert_eq!(read(r#"{"count": -3e2}"#).unwrap().count, Some(-300));
        assert_eq!(read(r#"{"count": null}"#).unwrap().count, None);
        for bad in [
            "5.5",
            "1e19",
            "18446744073709551615",
            "-9223372036854775809",
            "\"5\"",
        ] {
            assert!(read(&format!(r#"{{"count": {bad}}}"#)).is_err(), "{bad}");
        }
    }
}
