//! HTML escaping: the project's one escaper, for text put inside elements and inside
//! single- or double-quoted attribute values. The pages of the server, the templates'
//! output, the click-tracked links of an email and the HTML part made from a text body all
//! escape with it, so they agree on what safe text looks like.

/// `text` with the five HTML-significant characters escaped.
pub fn escape_html(text: &str) -> String {
    let extra: usize = text
        .bytes()
        .map(|b| match b {
            b'&' => 4,
            b'<' | b'>' => 3,
            b'"' | b'\'' => 5,
            _ => 0,
        })
        .sum();
    // The exact length, so that the string becomes a boxed `str` without reallocating.
    let mut out = String::with_capacity(text.len() + extra);
    // Writing to a String cannot fail.
    let _ = write_escaped_html(&mut out, text);
    out
}

/// Writes `text` escaped as [`escape_html`] does: what the web UI's templates escape with
/// (askama's escaper for `.html` templates is this function).
pub fn write_escaped_html<W: std::fmt::Write + ?Sized>(dest: &mut W, text: &str) -> std::fmt::Result {
    let mut rest = text;
    while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
        let (plain, tail) = rest.split_at(i);
        dest.write_str(plain)?;
        let mut chars = tail.chars();
        let entity = match chars.next() {
            Some('&') => "&amp;",
            Some('<') => "&lt;",
            Some('>') => "&gt;",
            Some('"') => "&quot;",
            _ => "&#39;",
        };
        dest.write_str(entity)?;
        rest = chars.as_str();
    }
    dest.write_str(rest)
}

/// `text` with its character references decoded: the five the escaper writes, `&apos;`,
/// and numeric ones (`&#65;`, `&#x42;`); anything else (an unknown name, a number that is
/// no character, an `&` with no `;` within 10 bytes) is kept as written.
pub fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('&') {
        out.push_str(before);
        let decoded = after
            .split_once(';')
            .filter(|(entity, _)| entity.len() < 10)
            .and_then(|(entity, tail)| Some((character(entity)?, tail)));
        match decoded {
            Some((c, tail)) => {
                out.push(c);
                rest = tail;
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference names (`amp`, `#65`, `#x42`), without its `&` and `;`.
fn character(entity: &str) -> Option<char> {
    match entity {
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "lt" => Some('<'),
        "gt" => Some('>'),
        _ => entity
            .strip_prefix("#x")
            .or_else(|| entity.strip_prefix("#X"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_five_characters_and_keeps_the_rest() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & 'Jerry'</a> 🎉 é"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt; 🎉 é"
        );
    }

    #[test]
    fn text_without_markup_is_unchanged() {
        assert_eq!(escape_html("plain text, é ✓"), "plain text, é ✓");
        assert_eq!(escape_html(""), "");
    }

    #[test]
    fn unescaping_decodes_known_and_numeric_references_and_keeps_the_rest() {
        assert_eq!(unescape_html("&amp;lt; &bogus; &#65;&#x42;"), "&lt; &bogus; AB");
        assert_eq!(unescape_html("a & b; &#xD800; &#99999999999; &; &"), "a & b; &#xD800; &#99999999999; &; &");
        assert_eq!(unescape_html("&amp;averyveryverylongname;"), "&averyveryverylongname;");
        assert_eq!(unescape_html("é&apos;é&quot;"), "é'é\"");
    }

    #[test]
    fn unescaping_undoes_escaping() {
        let text = r#"<a href="x?a=1&b=2">Tom & 'Jerry'</a> 🎉"#;
        assert_eq!(unescape_html(&escape_html(text)), text);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Any text survives the round trip, and decoding arbitrary text never panics.
        #[test]
        fn any_text_round_trips_and_unescaping_never_panics(text in "(?s).{0,40}", junk in "[&#;xXa-f0-9lgtampquos ]{0,40}") {
            proptest::prop_assert_eq!(unescape_html(&escape_html(&text)), text);
            let _ = unescape_html(&junk);
        }
    }
}
