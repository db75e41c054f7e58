//! HMAC-SHA256 with length-prefixed inputs and constant-time checks, shared by links and
//! webhooks.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// An HMAC-SHA256 keyed once; cloned for each computation.
#[derive(Clone)]
pub(crate) struct Keyed(Hmac<Sha256>);

impl Keyed {
    pub(crate) fn new(secret: &[u8]) -> Keyed {
        // HMAC accepts keys of any length (longer ones are hashed first), so this never
        // fails; the fallback only keeps the code free of panics.
        match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => Keyed(mac),
            Err(_) => Keyed(Hmac::<Sha256>::new(&Default::default())),
        }
    }

    /// The MAC of raw bytes.
    pub(crate) fn raw(&self, bytes: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// The MAC of a sequence of fields, each prefixed by its length so that no two
    /// different sequences feed the same bytes.
    pub(crate) fn fields(&self, fields: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.0.clone();
        for field in fields {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of `tag` against the MAC of `fields` (`Mac::verify_slice`,
    /// which compares with `subtle`); a tag of the wrong length is simply unequal.
    pub(crate) fn fields_match(&self, fields: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.0.clone();
        for field in fields {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac.verify_slice(tag).is_ok()
    }

    /// Constant-time check of `tag` against the MAC of raw bytes.
    pub(crate) fn raw_matches(&self, bytes: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(bytes);
        mac.verify_slice(tag).is_ok()
    }
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// Decodes hexadecimal (either case); `None` on anything else.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_agree_with_the_computed_tags_and_refuse_any_other() {
        let key = Keyed::new(b"k");
        let tag = key.fields(&[b"a", b"bc"]);
        assert!(key.fields_match(&[b"a", b"bc"], &tag));
        assert!(!key.fields_match(&[b"ab", b"c"], &tag), "length prefixes keep fields apart");
        assert!(!key.fields_match(&[b"a", b"bc"], &tag[..31]), "a truncated tag is unequal, not a prefix match");
        assert!(!key.fields_match(&[b"a", b"bc"], &[tag.as_slice(), &[0]].concat()));
        assert!(!key.fields_match(&[b"a", b"bc"], &[]));
        let raw = key.raw(b"1.{}");
        assert!(key.raw_matches(b"1.{}", &raw));
        assert!(!key.raw_matches(b"1.{ }", &raw));
    }

    #[test]
    fn hex_round_trips_and_refuses_non_hex() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        for bad in ["0", "zz", "0g", "\u{e9}"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
    }
}
