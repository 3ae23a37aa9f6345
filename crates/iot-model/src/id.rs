//! Rules shared by every identifier newtype, and the macro that declares one.

use crate::ModelError;

/// Checks an identifier: not empty, not `.` or `..` (which a URL resolver would swallow), no control
/// characters, and at most `max_len` characters. Anything else is allowed, because it is percent-encoded
/// wherever it travels.
#[inline]
pub fn check_id(kind: &'static str, value: &str, max_len: usize) -> Result<(), ModelError> {
    let bytes = value.as_bytes();
    // Ids are decoded by the thousand per page, and nearly all of them are printable ASCII of a few dozen
    // bytes. Such an id of 3 to `max_len` bytes passes every rule (not empty, not `.` or `..`, no control
    // character, no more characters than bytes), so it is accepted after one word-wise scan, inlined into the
    // caller; anything else takes the full check below, which decides alone.
    if bytes.len() > 2 && bytes.len() <= max_len && is_printable_ascii(bytes) {
        return Ok(());
    }
    check_id_fully(kind, value, max_len)
}

/// Whether every byte is printable ASCII (`0x20..=0x7e`), tested eight bytes at a time.
#[inline]
fn is_printable_ascii(bytes: &[u8]) -> bool {
    /// `0x01` in every byte.
    const ONES: u64 = u64::MAX / 0xff;
    /// `0x80` in every byte.
    const HIGH: u64 = ONES * 0x80;
    // A word has a byte outside `0x20..=0x7e` exactly when one of three tests sets some byte's high bit: the
    // byte itself (0x80 and above); the byte plus one (0x7f); or the byte minus 0x20 where the byte's own
    // high bit was clear (below 0x20, the "has a byte less than n" test). Carries and borrows between bytes
    // can move which high bit is set, never whether one is, so the word-level answer is exact.
    let bad = |w: u64| (w | w.wrapping_add(ONES) | (w.wrapping_sub(ONES * 0x20) & !w)) & HIGH;
    let words = bytes.chunks_exact(8);
    let rest = words.remainder();
    // Every chunk has eight bytes, so `first_chunk` always succeeds and compiles to a plain load (were it ever
    // to fail, the word would count as bad and the full check would decide).
    let mut acc = words.fold(0, |acc, w| acc | w.first_chunk::<8>().map_or(HIGH, |w| bad(u64::from_le_bytes(*w))));
    if !rest.is_empty() {
        acc |= match bytes.last_chunk::<8>() {
            // The last eight bytes overlap the words already tested, which is harmless for a test of all bytes.
            Some(last) => bad(u64::from_le_bytes(*last)),
            None => rest.iter().fold(0, |acc, &b| acc | bad(u64::from(b))),
        };
    }
    acc == 0
}

/// The complete rules of [`check_id`], for the ids its fast path does not settle.
#[cold]
fn check_id_fully(kind: &'static str, value: &str, max_len: usize) -> Result<(), ModelError> {
    let bytes = value.as_bytes();
    // One branch-free pass flags non-ASCII bytes and ASCII control bytes together; only non-ASCII ids need
    // the character-level check (which also catches the C1 controls).
    let (non_ascii, ascii_control) =
        bytes.iter().fold((false, false), |(n, c), &b| (n | (b >= 0x80), c | (b < 0x20) | (b == 0x7f)));
    let has_control = if non_ascii { value.chars().any(char::is_control) } else { ascii_control };
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value == "." || value == ".." {
        "must not be `.` or `..`"
    } else if has_control {
        "must not contain control characters"
    } else if bytes.len() > max_len && value.chars().count() > max_len {
        "is too long"
    } else {
        return Ok(());
    };
    Err(ModelError::InvalidId { kind, reason })
}

/// Bytes of an identifier kept inside the value itself rather than on the heap: enough for the platform's
/// 36-character UUID-shaped device ids, and it makes an identifier 40 bytes, no larger than a boxed 36-byte
/// id takes with its heap block (16 + 48). Ids are decoded by the thousand per page; keeping them inline saves
/// an allocation and a free for each (see `docs/performance.md`, "Below plain serde").
const INLINE: usize = 38;

/// The text of an identifier: inline up to [`INLINE`] bytes, boxed beyond. Each text has exactly one form
/// (inline exactly when it fits), so comparing the forms' bytes compares the texts.
#[derive(Clone)]
pub(crate) enum IdText {
    /// The first `.0` bytes of `.1` are the text; the rest are zero.
    Inline(u8, [u8; INLINE]),
    /// A text longer than [`INLINE`] bytes.
    Heap(Box<str>),
}

impl IdText {
    /// Copies `s` (inline when it fits).
    #[inline]
    pub(crate) fn new(s: &str) -> Self {
        let b = s.as_bytes();
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                bytes[..b.len()].copy_from_slice(b);
                IdText::Inline(len, bytes)
            }
            _ => IdText::Heap(s.into()),
        }
    }

    /// Takes `s`, reusing its allocation when the text does not fit inline.
    pub(crate) fn from_string(s: String) -> Self {
        if s.len() <= INLINE { Self::new(&s) } else { IdText::Heap(s.into_boxed_str()) }
    }

    /// The text's bytes.
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            IdText::Inline(len, bytes) => bytes.get(..usize::from(*len)).unwrap_or_default(),
            IdText::Heap(s) => s.as_bytes(),
        }
    }

    /// The text. The inline bytes are always a whole `str` copied in by [`IdText::new`]; without `unsafe`
    /// they are checked again here (a word-wise ASCII test for the usual id), never failing.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        match self {
            IdText::Inline(..) => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            IdText::Heap(s) => s,
        }
    }
}

impl std::fmt::Debug for IdText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

// Compared, ordered and hashed as the text, whatever its form (two forms never hold the same text anyway).
impl PartialEq for IdText {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for IdText {}

impl PartialOrd for IdText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IdText {
    // Bytewise order is the order of `str`.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for IdText {
    // As `str` hashes: the bytes, then `0xff`.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

/// Declares an identifier newtype checked with [`check_id`]. Used by the generated model only, so it is not
/// exported.
macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        ///
        /// Checked at construction: not empty, not `.` or `..`, no control characters, at most
        #[doc = concat!(stringify!($max), " characters.")]
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($crate::id::IdText);

        impl $name {
            /// Longest accepted value, in characters.
            pub const MAX_LEN: usize = $max;

            /// Checks and wraps an identifier.
            pub fn new(value: impl Into<String>) -> Result<Self, $crate::ModelError> {
                let value = value.into();
                $crate::id::check_id(stringify!($name), &value, $max)?;
                Ok(Self($crate::id::IdText::from_string(value)))
            }

            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0.as_str())
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.0.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::ModelError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::ModelError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.0.as_str()
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.0.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl ::serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " string"))
                    }
                    // Checked on the borrowed text first, then copied once into the value (inline for the usual
                    // id, else a box): no `String` on the way, and nothing allocated for an id that is rejected.
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $crate::id::check_id(stringify!($name), v, $max).map_err(E::custom)?;
                        Ok($name($crate::id::IdText::new(v)))
                    }
                    fn visit_string<E: ::serde::de::Error>(self, v: String) -> Result<$name, E> {
                        $name::new(v).map_err(E::custom)
                    }
                    // An id sent as a bare integer has one meaning: its decimal digits.
                    fn visit_u64<E: ::serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        $name::new(v.to_string()).map_err(E::custom)
                    }
                    fn visit_i64<E: ::serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        $name::new(v.to_string()).map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}
pub(crate) use id_newtype;

#[cfg(test)]
mod tests {
    use super::check_id;

    #[test]
    fn rejects_what_a_path_would_swallow_or_break() {
        for bad in ["", ".", "..", "a\nb", "a\0", "x\u{7f}"] {
            assert!(check_id("T", bad, 256).is_err(), "{bad:?}");
        }
        for good in ["a/b", "?x=1", "#", "%2F", "a b", "日本", "...", ".a", "a.."] {
            assert!(check_id("T", good, 256).is_ok(), "{good:?}");
        }
        assert!(check_id("T", &"é".repeat(256), 256).is_ok());
        assert!(check_id("T", &"é".repeat(257), 256).is_err());
    }

    /// The text of an id, compared as `str` is, in either form.
    fn same_as_str(a: &str, b: &str) {
        use super::IdText;
        use std::hash::{BuildHasher, RandomState};
        let (x, y) = (IdText::new(a), IdText::from_string(b.to_owned()));
        assert_eq!(x.as_str(), a);
        assert_eq!(y.as_str(), b);
        assert_eq!(IdText::from_string(a.to_owned()), x, "{a:?}");
        assert_eq!(x == y, a == b, "{a:?} {b:?}");
        assert_eq!(x.cmp(&y), a.cmp(b), "{a:?} {b:?}");
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(&x), hasher.hash_one(a), "{a:?}");
    }

    #[test]
    fn inline_and_boxed_texts_read_and_compare_as_their_str() {
        // Every length around the inline limit, in ASCII and with multi-byte characters straddling it.
        let texts: Vec<String> = (0..=80)
            .flat_map(|n| ["a".repeat(n), "b".repeat(n), format!("{}é", "a".repeat(n)), format!("日{}", "z".repeat(n))])
            .collect();
        for a in &texts {
            for b in &texts {
                same_as_str(a, b);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_reads_and_compares_as_its_str(a in "\\PC{0,50}", b in "\\PC{0,50}") {
            same_as_str(&a, &b);
            same_as_str(&a, &a);
        }
    }

    /// The complete rules, written out plainly, as an oracle for the word-wise fast path.
    fn reference(value: &str, max_len: usize) -> bool {
        !value.is_empty()
            && value != "."
            && value != ".."
            && !value.chars().any(char::is_control)
            && value.chars().count() <= max_len
    }

    #[test]
    fn fast_path_agrees_with_the_rules_for_every_byte_at_every_position() {
        // Every ASCII byte and a few multi-byte characters (including the C1 control U+0085), at every position
        // of ids from 1 to 20 bytes, so each position lands in a whole word, in the overlapped last word, or in
        // an id shorter than a word; with limits below, at and above the length.
        let probes: Vec<String> = (0u8..0x80)
            .map(|b| char::from(b).to_string())
            .chain(["\u{85}", "\u{a0}", "é", "日", "\u{2028}", "\u{1f600}"].map(String::from))
            .collect();
        for len in 1..=20 {
            for pos in 0..len {
                for p in &probes {
                    let id: String = (0..len).map(|i| if i == pos { p.as_str() } else { "a" }).collect();
                    for max_len in [len - 1, len, len + 1, 256] {
                        assert_eq!(check_id("T", &id, max_len).is_ok(), reference(&id, max_len), "{id:?} {max_len}");
                    }
                }
            }
        }
        for id in ["", ".", "..", "...", "a", "ab", "abc", ". ", " .", "\u{7f}\u{7f}\u{7f}"] {
            for max_len in [0, 1, 2, 3, 256] {
                assert_eq!(check_id("T", id, max_len).is_ok(), reference(id, max_len), "{id:?} {max_len}");
            }
        }
    }
}
