//! Secret strings (app secret, access token, refresh token) that never print their value and are wiped from
//! memory when dropped.
//!
//! A secret cannot be serialized by accident:
//!
//! ```compile_fail
//! let json = serde_json::to_string(&iot_model::AppSecret::new("s3cr3t"));
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// `Debug` and `Display` print `[redacted]`; the value is reached only through
        /// [`expose_secret`](Self::expose_secret). The type does not implement `Serialize`, so a secret
        /// cannot reach a log or a JSON document by accident; request bodies write it through
        /// [`serialize_exposed`](crate::secret::serialize_exposed) on purpose. Its bytes are overwritten with
        /// zeros when it is dropped (`zeroize`), so a freed secret does not linger in the heap.
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// Returns the secret value; call it only where the value must travel.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::new)
            }
        }

        impl AsRef<$name> for $name {
            fn as_ref(&self) -> &$name {
                self
            }
        }

        impl crate::secret::Exposable for $name {
            fn exposed(&self) -> &str {
                &self.0
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                zeroize::Zeroize::zeroize(&mut self.0);
            }
        }

        impl zeroize::ZeroizeOnDrop for $name {}
    };
}

/// A secret that a request body may deliberately write to the wire.
pub trait Exposable {
    /// The secret value.
    fn exposed(&self) -> &str;
}

/// Serializes a secret's value; used only by request bodies that must carry it.
pub fn serialize_exposed<S: serde::Serializer, T: Exposable>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.exposed())
}

/// Serializes an optional secret's value; used only by bodies that must carry it.
pub fn serialize_exposed_opt<S: serde::Serializer, T: Exposable>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => serializer.serialize_str(v.exposed()),
        None => serializer.serialize_none(),
    }
}

secret_type!(
    /// The application secret issued with an appId.
    AppSecret
);
secret_type!(
    /// An access token, presented as `Authorization: Bearer <token>`.
    AccessToken
);
secret_type!(
    /// A refresh token, traded for a new access token.
    RefreshToken
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Compile-time: every secret wipes itself on drop, and none can be serialized by accident.
    #[test]
    fn secrets_zeroize_on_drop_and_do_not_serialize() {
        fn wiped<T: zeroize::ZeroizeOnDrop>() {}
        wiped::<AppSecret>();
        wiped::<AccessToken>();
        wiped::<RefreshToken>();
        // That none implements `Serialize` is shown by the module's `compile_fail` doctest.
    }

    #[test]
    fn secrets_never_print_their_value() {
        let sentinel = "s3cr3t-SENTINEL";
        let a = AppSecret::new(sentinel);
        let t = AccessToken::new(sentinel);
        let r = RefreshToken::new(sentinel);
        for shown in
            [format!("{a:?}"), format!("{a}"), format!("{t:?}"), format!("{t}"), format!("{r:?}"), format!("{r:#?}")]
        {
            assert!(!shown.contains(sentinel), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        assert_eq!(a.expose_secret(), sentinel);
    }
}
