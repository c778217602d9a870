//! Numbers read so that any integer the API server stores decodes.
//!
//! The API server stores any integer a schema allows, and a schema only got its bounds at some
//! point: an object stored before then can hold `count: 5000000000`. Decoding that into a `u32`
//! would fail, and kube's watcher fails the whole list of the kind on one object it cannot
//! decode, so every object of the kind would go unreconciled. These deserializers saturate
//! instead (`5000000000` reads as `u32::MAX`, `-1` as `0`): every bound the CRD sets lies
//! strictly inside the type, so a saturated value is still out of bounds, and the spec check
//! (`validate`) names the field.

use std::fmt;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::{self, Deserializer, Visitor};

/// An integer of any size, saturated into `T`.
struct Saturating<T>(std::marker::PhantomData<T>);

trait Saturate: Sized {
    const EXPECTING: &'static str;
    fn from_i128(n: i128) -> Self;
    fn from_f64(n: f64) -> Self;
}

impl Saturate for u32 {
    const EXPECTING: &'static str = "a non-negative integer";
    fn from_i128(n: i128) -> Self {
        u32::try_from(n.max(0)).unwrap_or(u32::MAX)
    }
    fn from_f64(n: f64) -> Self {
        // `as` saturates (and maps NaN to 0).
        n as u32
    }
}

impl Saturate for i32 {
    const EXPECTING: &'static str = "an integer";
    fn from_i128(n: i128) -> Self {
        i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
    }
    fn from_f64(n: f64) -> Self {
        n as i32
    }
}

impl<T: Saturate> Visitor<'_> for Saturating<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        Ok(T::from_i128(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        Ok(T::from_i128(n.into()))
    }

    fn visit_i128<E: de::Error>(self, n: i128) -> Result<T, E> {
        Ok(T::from_i128(n))
    }

    fn visit_u128<E: de::Error>(self, n: u128) -> Result<T, E> {
        Ok(T::from_i128(i128::try_from(n).unwrap_or(i128::MAX)))
    }

    // The API server may keep an integer too large for int64 as a float (`1e+19`).
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
        Ok(T::from_f64(n))
    }
}

/// A `u32`, saturated.
pub fn u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    deserializer.deserialize_any(Saturating::<u32>(std::marker::PhantomData))
}

/// An optional `u32`, saturated (`null` is `None`).
pub fn option_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    struct OptionVisitor;
    impl<'de> Visitor<'de> for OptionVisitor {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            u32(d).map(Some)
        }
    }
    deserializer.deserialize_option(OptionVisitor)
}

/// An optional count-or-percentage: a string as it is, an integer saturated into `i32`.
pub fn option_int_or_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<IntOrString>, D::Error> {
    struct IntOrStringVisitor;
    impl<'de> Visitor<'de> for IntOrStringVisitor {
        type Value = Option<IntOrString>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer, a string or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(IntOrString::String(s.to_string())))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok(Some(IntOrString::Int(<i32 as Saturate>::from_i128(
                n.into(),
            ))))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(IntOrString::Int(<i32 as Saturate>::from_i128(
                n.into(),
            ))))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            Ok(Some(IntOrString::Int(<i32 as Saturate>::from_f64(n))))
        }
    }
    deserializer.deserialize_option(IntOrStringVisitor)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Numbers {
        #[serde(deserialize_with = "u32")]
        plain: u32,
        #[serde(default, deserialize_with = "option_u32")]
        optional: Option<u32>,
        #[serde(default, deserialize_with = "option_int_or_string")]
        either: Option<IntOrString>,
    }

    fn read(value: serde_json::Value) -> Numbers {
        serde_json::from_value(value).expect("any integer decodes")
    }

    #[test]
    fn integers_of_any_size_saturate() {
        let n =
            read(json!({"plain": 5_000_000_000u64, "optional": -1, "either": 3_000_000_000u64}));
        assert_eq!(n.plain, u32::MAX);
        assert_eq!(n.optional, Some(0));
        assert_eq!(n.either, Some(IntOrString::Int(i32::MAX)));
        let n = read(json!({"plain": 1e19, "either": -3_000_000_000i64}));
        assert_eq!(n.plain, u32::MAX);
        assert_eq!(n.optional, None);
        assert_eq!(n.either, Some(IntOrString::Int(i32::MIN)));
        let n = read(json!({"plain": 7, "optional": null, "either": "5%"}));
        assert_eq!(n.plain, 7);
        assert_eq!(n.optional, None);
        assert_eq!(n.either, Some(IntOrString::String("5%".into())));
        let huge: serde_json::Value =
            serde_json::from_str(r#"{"plain": 123456789012345678901234567890}"#).expect("JSON");
        assert_eq!(read(huge).plain, u32::MAX);
    }

    #[test]
    fn other_types_are_still_refused() {
        assert!(serde_json::from_value::<Numbers>(json!({"plain": "7"})).is_err());
        assert!(serde_json::from_value::<Numbers>(json!({"plain": 1, "either": true})).is_err());
    }
}
