//! Signed links: click redirects, the open pixel, one-click unsubscribe, survey answers
//! and a survey's hosted answer page.
//!
//! A link is a path and a query. The query names the enrollment (`e`), the step (`s`) and
//! the contact (`c`), the kind's own parameters (`url` for a click, `q` and `score` for a
//! survey answer, `q` for a survey page) and `sig`, the base64url HMAC-SHA256 over a kind tag and those values,
//! length-prefixed. The route tells [`LinkSigner::verify`] which kind it expects; the
//! comparison is constant-time. Links carry no expiry: a message may be opened years
//! later.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use thiserror::Error;

use crate::mac::Keyed;

/// Everything but RFC 3986's unreserved characters is percent-encoded in a query value.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Who and which send a link belongs to: the ledger key (enrollment, step) and the
/// contact. Identifiers are opaque text to this crate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkSubject {
    /// The enrollment the message was sent for.
    pub enrollment: String,
    /// The program step that sent it.
    pub step: String,
    /// The contact it was sent to.
    pub contact: String,
}

/// The survey a survey link answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Survey {
    /// Net Promoter Score, 0–10.
    Nps,
    /// Customer satisfaction, 1–5.
    Csat,
}

impl Survey {
    /// The scores a link may carry: 0–10 for NPS, 1–5 for CSAT.
    pub fn scores(self) -> std::ops::RangeInclusive<u8> {
        match self {
            Survey::Nps => 0..=10,
            Survey::Csat => 1..=5,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Survey::Nps => "nps",
            Survey::Csat => "csat",
        }
    }

    fn parse(text: &str) -> Option<Survey> {
        match text {
            "nps" => Some(Survey::Nps),
            "csat" => Some(Survey::Csat),
            _ => None,
        }
    }
}

/// What a link does when followed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Link {
    /// Record a click, then redirect to `url` (an `http` or `https` URL).
    Click {
        /// Where the click goes.
        url: String,
    },
    /// The open pixel.
    Open,
    /// One-click unsubscribe (RFC 8058): a POST with `List-Unsubscribe=One-Click`, or a
    /// confirmation page on GET.
    Unsubscribe,
    /// A survey answer with its score.
    Survey {
        /// Which survey.
        survey: Survey,
        /// The answer; must lie in [`Survey::scores`] to verify.
        score: u8,
    },
    /// The hosted answer page of a survey: it shows the scale, each score a signed
    /// [`Link::Survey`] for the same subject. Signed without a score, so following it
    /// answers nothing.
    SurveyPage {
        /// Which survey.
        survey: Survey,
    },
}

impl Link {
    /// The kind of this link, which is also the route that serves it.
    pub fn kind(&self) -> LinkKind {
        match self {
            Link::Click { .. } => LinkKind::Click,
            Link::Open => LinkKind::Open,
            Link::Unsubscribe => LinkKind::Unsubscribe,
            Link::Survey { .. } => LinkKind::Survey,
            Link::SurveyPage { .. } => LinkKind::SurveyPage,
        }
    }
}

/// The five routes of signed links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// `/t/c`: click redirect.
    Click,
    /// `/t/o`: open pixel.
    Open,
    /// `/u`: unsubscribe.
    Unsubscribe,
    /// `/s`: survey answer.
    Survey,
    /// `/s/page`: a survey's hosted answer page.
    SurveyPage,
}

impl LinkKind {
    const ALL: [LinkKind; 5] =
        [LinkKind::Click, LinkKind::Open, LinkKind::Unsubscribe, LinkKind::Survey, LinkKind::SurveyPage];

    /// The path the kind is served under.
    pub fn path(self) -> &'static str {
        match self {
            LinkKind::Click => "/t/c",
            LinkKind::Open => "/t/o",
            LinkKind::Unsubscribe => "/u",
            LinkKind::Survey => "/s",
            LinkKind::SurveyPage => "/s/page",
        }
    }

    fn tag(self) -> &'static [u8] {
        match self {
            LinkKind::Click => b"cairn-link-v1/click",
            LinkKind::Open => b"cairn-link-v1/open",
            LinkKind::Unsubscribe => b"cairn-link-v1/unsubscribe",
            LinkKind::Survey => b"cairn-link-v1/survey",
            LinkKind::SurveyPage => b"cairn-link-v1/survey-page",
        }
    }
}

/// Why a link was refused. The HTTP layer answers 400 to each of them and redirects
/// nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LinkError {
    /// The link carries no `sig`.
    #[error("the link is not signed")]
    Unsigned,
    /// The signature does not match the link's parameters: something was changed.
    #[error("the link's signature does not match its parameters")]
    Tampered,
    /// The link is genuine but for another route (an open pixel's query on the click
    /// route, say).
    #[error("the link was signed for {actual:?}, not {expected:?}")]
    WrongKind {
        /// The route that received it.
        expected: LinkKind,
        /// The kind it was signed for.
        actual: LinkKind,
    },
    /// A parameter is missing, repeated, not UTF-8 once decoded, or out of range.
    #[error("malformed link: {0}")]
    Malformed(String),
}

/// A link whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLink {
    /// Whom and which send it belongs to.
    pub subject: LinkSubject,
    /// What it does.
    pub link: Link,
}

/// Signs and verifies links with one secret (use at least 32 random bytes). Its `Debug`
/// output shows no key material.
#[derive(Clone)]
pub struct LinkSigner {
    key: Keyed,
}

impl fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSigner { secret: <redacted> }")
    }
}

/// `public_url` (e.g. `https://cs.example.com/`, a trailing slash or not) joined with a
/// signed path such as `/t/c?…`.
pub fn absolute_url(public_url: &str, path_and_query: &str) -> String {
    format!("{}{}", public_url.trim_end_matches('/'), path_and_query)
}

impl LinkSigner {
    /// A signer keyed with `secret`.
    pub fn new(secret: &[u8]) -> LinkSigner {
        LinkSigner { key: Keyed::new(secret) }
    }

    /// The signed path and query of `link` for `subject`, e.g.
    /// `/t/c?e=…&s=…&c=…&url=…&sig=…`; prefix it with [`absolute_url`].
    pub fn sign(&self, link: &Link, subject: &LinkSubject) -> String {
        let kind = link.kind();
        let mut query = format!(
            "{}?e={}&s={}&c={}",
            kind.path(),
            encode_query_value(&subject.enrollment),
            encode_query_value(&subject.step),
            encode_query_value(&subject.contact)
        );
        let score_text;
        let extra: Vec<&[u8]> = match link {
            Link::Click { url } => {
                query.push_str("&url=");
                query.push_str(&encode_query_value(url));
                vec![url.as_bytes()]
            }
            Link::Open | Link::Unsubscribe => Vec::new(),
            Link::Survey { survey, score } => {
                score_text = score.to_string();
                query.push_str("&q=");
                query.push_str(survey.as_str());
                query.push_str("&score=");
                query.push_str(&score_text);
                vec![survey.as_str().as_bytes(), score_text.as_bytes()]
            }
            Link::SurveyPage { survey } => {
                query.push_str("&q=");
                query.push_str(survey.as_str());
                vec![survey.as_str().as_bytes()]
            }
        };
        let tag = self.key.fields(&fields(kind, subject, &extra));
        query.push_str("&sig=");
        query.push_str(&URL_SAFE_NO_PAD.encode(tag));
        query
    }

    /// One signed link per possible answer of `survey`, in score order.
    pub fn survey_links(&self, survey: Survey, subject: &LinkSubject) -> Vec<(u8, String)> {
        survey.scores().map(|score| (score, self.sign(&Link::Survey { survey, score }, subject))).collect()
    }

    /// Checks the raw query string (without `?`, as received, before any `+`-to-space
    /// decoding) of a request to `expected`'s route, and returns what the link does.
    pub fn verify(&self, expected: LinkKind, query: &str) -> Result<VerifiedLink, LinkError> {
        let params = Params::parse(query)?;
        let sig = params.sig.as_deref().ok_or(LinkError::Unsigned)?;
        // A signature that does not even decode was altered; it cannot match anything.
        let tag = URL_SAFE_NO_PAD.decode(sig).map_err(|_| LinkError::Tampered)?;
        let subject = match (&params.e, &params.s, &params.c) {
            (Some(e), Some(s), Some(c)) => LinkSubject { enrollment: e.clone(), step: s.clone(), contact: c.clone() },
            _ => return Err(LinkError::Malformed("the enrollment (e), step (s) and contact (c) are required".into())),
        };
        let candidate = |kind: LinkKind| -> Option<Vec<&[u8]>> {
            match kind {
                LinkKind::Click => Some(vec![params.url.as_deref()?.as_bytes()]),
                LinkKind::Open | LinkKind::Unsubscribe => Some(Vec::new()),
                LinkKind::Survey => Some(vec![params.q.as_deref()?.as_bytes(), params.score.as_deref()?.as_bytes()]),
                LinkKind::SurveyPage => Some(vec![params.q.as_deref()?.as_bytes()]),
            }
        };
        let matches = |kind: LinkKind| match candidate(kind) {
            Some(extra) => self.key.fields_match(&fields(kind, &subject, &extra), &tag),
            None => false,
        };
        if !matches(expected) {
            if let Some(actual) = LinkKind::ALL.into_iter().filter(|k| *k != expected).find(|k| matches(*k)) {
                return Err(LinkError::WrongKind { expected, actual });
            }
            return Err(match candidate(expected) {
                Some(_) => LinkError::Tampered,
                None => LinkError::Malformed(format!("parameters of a {} link are missing", expected.path())),
            });
        }
        // Signed by us; still check what a redirect or an answer will trust.
        let link = match expected {
            LinkKind::Click => {
                let url = params.url.unwrap_or_default();
                if !is_http_url(&url) {
                    return Err(LinkError::Malformed("the target is not an http(s) URL".into()));
                }
                Link::Click { url }
            }
            LinkKind::Open => Link::Open,
            LinkKind::Unsubscribe => Link::Unsubscribe,
            LinkKind::Survey => {
                let survey = params
                    .q
                    .as_deref()
                    .and_then(Survey::parse)
                    .ok_or_else(|| LinkError::Malformed("unknown survey (q)".into()))?;
                let score = params
                    .score
                    .as_deref()
                    .and_then(|s| s.parse::<u8>().ok())
                    .filter(|s| survey.scores().contains(s))
                    .ok_or_else(|| LinkError::Malformed("the score is out of range".into()))?;
                Link::Survey { survey, score }
            }
            LinkKind::SurveyPage => {
                let survey = params
                    .q
                    .as_deref()
                    .and_then(Survey::parse)
                    .ok_or_else(|| LinkError::Malformed("unknown survey (q)".into()))?;
                Link::SurveyPage { survey }
            }
        };
        Ok(VerifiedLink { subject, link })
    }
}

/// True for an absolute `http://` or `https://` URL (scheme in any case) without control
/// characters, so that it can become a `Location` header as it is.
pub(crate) fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let scheme_ok = (lower.starts_with("http://") && url.len() > 7) || (lower.starts_with("https://") && url.len() > 8);
    scheme_ok && !url.chars().any(char::is_control)
}

fn fields<'a>(kind: LinkKind, subject: &'a LinkSubject, extra: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut all = vec![kind.tag(), subject.enrollment.as_bytes(), subject.step.as_bytes(), subject.contact.as_bytes()];
    all.extend_from_slice(extra);
    all
}

/// `value` percent-encoded for a URL's query string (or a form body): every byte but
/// ASCII letters, digits and `-._~` as `%XX` (RFC 3986's unreserved characters).
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// The parameters a link may carry; unknown ones (added by a mail gateway) are ignored,
/// a repeated known one is refused.
#[derive(Default)]
struct Params {
    e: Option<String>,
    s: Option<String>,
    c: Option<String>,
    url: Option<String>,
    q: Option<String>,
    score: Option<String>,
    sig: Option<String>,
}

impl Params {
    fn parse(query: &str) -> Result<Params, LinkError> {
        let mut params = Params::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "e" => &mut params.e,
                "s" => &mut params.s,
                "c" => &mut params.c,
                "url" => &mut params.url,
                "q" => &mut params.q,
                "score" => &mut params.score,
                "sig" => &mut params.sig,
                _ => continue,
            };
            if slot.is_some() {
                return Err(LinkError::Malformed(format!("`{name}` appears more than once")));
            }
            let value = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| LinkError::Malformed(format!("`{name}` is not UTF-8")))?;
            *slot = Some(value.into_owned());
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_value_keeps_only_the_unreserved_characters() {
        // By hand from RFC 3986: space 20, & 26, = 3D, / 2F, + 2B, é is C3 A9 in UTF-8.
        assert_eq!(encode_query_value("a b&c=d/e+f é-._~Z9"), "a%20b%26c%3Dd%2Fe%2Bf%20%C3%A9-._~Z9");
        assert_eq!(encode_query_value(""), "");
    }

    fn subject() -> LinkSubject {
        LinkSubject { enrollment: "enr-42".into(), step: "welcome/1".into(), contact: "ada@example.com".into() }
    }

    fn signer() -> LinkSigner {
        LinkSigner::new(b"an-example-secret-of-32-bytes!!!")
    }

    fn query(path_and_query: &str) -> &str {
        path_and_query.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    fn replace_param(q: &str, name: &str, value: &str) -> String {
        q.split('&')
            .map(|p| if p.split('=').next() == Some(name) { format!("{name}={value}") } else { p.to_string() })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn click() -> Link {
        Link::Click { url: "https://docs.example.com/start?utm=a&b=c d#x".into() }
    }

    #[test]
    fn every_kind_round_trips() {
        let s = signer();
        let links = [
            click(),
            Link::Open,
            Link::Unsubscribe,
            Link::Survey { survey: Survey::Nps, score: 0 },
            Link::Survey { survey: Survey::Nps, score: 10 },
            Link::Survey { survey: Survey::Csat, score: 5 },
        ];
        for link in links {
            let signed = s.sign(&link, &subject());
            assert!(signed.starts_with(link.kind().path()), "{signed}");
            let verified = s.verify(link.kind(), query(&signed)).unwrap();
            assert_eq!(verified, VerifiedLink { subject: subject(), link });
        }
    }

    #[test]
    fn paths_have_the_documented_shape() {
        let s = signer();
        let c = s.sign(&click(), &subject());
        assert!(c.starts_with("/t/c?e=enr-42&s=welcome%2F1&c=ada%40example.com&url=https%3A%2F%2Fdocs"), "{c}");
        assert!(c.contains("&sig="));
        assert!(s.sign(&Link::Open, &subject()).starts_with("/t/o?"));
        assert!(s.sign(&Link::Unsubscribe, &subject()).starts_with("/u?"));
        let survey = s.sign(&Link::Survey { survey: Survey::Csat, score: 4 }, &subject());
        assert!(survey.starts_with("/s?") && survey.contains("&q=csat&score=4&sig="), "{survey}");
        assert_eq!(absolute_url("http://127.0.0.1:8080/", "/u?x"), "http://127.0.0.1:8080/u?x");
    }

    #[test]
    fn survey_links_cover_every_score() {
        let s = signer();
        let nps = s.survey_links(Survey::Nps, &subject());
        assert_eq!(nps.iter().map(|(n, _)| *n).collect::<Vec<_>>(), (0..=10).collect::<Vec<_>>());
        let csat = s.survey_links(Survey::Csat, &subject());
        assert_eq!(csat.len(), 5);
        for (score, link) in csat {
            let v = s.verify(LinkKind::Survey, query(&link)).unwrap();
            assert_eq!(v.link, Link::Survey { survey: Survey::Csat, score });
        }
    }

    #[test]
    fn a_changed_parameter_is_tampering() {
        let s = signer();
        let signed = s.sign(&click(), &subject());
        for (name, value) in [("e", "enr-43"), ("s", "welcome%2F2"), ("c", "eve%40example.com")] {
            let q = replace_param(query(&signed), name, value);
            assert_eq!(s.verify(LinkKind::Click, &q), Err(LinkError::Tampered), "{name}");
        }
        let survey = s.sign(&Link::Survey { survey: Survey::Nps, score: 3 }, &subject());
        let q = replace_param(query(&survey), "score", "10");
        assert_eq!(s.verify(LinkKind::Survey, &q), Err(LinkError::Tampered));
        let q = replace_param(query(&survey), "q", "csat");
        assert_eq!(s.verify(LinkKind::Survey, &q), Err(LinkError::Tampered));
    }

    #[test]
    fn a_swapped_url_is_tampering_so_there_is_no_open_redirect() {
        let s = signer();
        let signed = s.sign(&click(), &subject());
        let q = replace_param(query(&signed), "url", "https%3A%2F%2Fevil.example");
        assert_eq!(s.verify(LinkKind::Click, &q), Err(LinkError::Tampered));
        let q = replace_param(query(&signed), "url", "");
        assert_eq!(s.verify(LinkKind::Click, &q), Err(LinkError::Tampered));
    }

    #[test]
    fn a_changed_or_dropped_signature_is_refused() {
        let s = signer();
        let signed = s.sign(&Link::Open, &subject());
        let sig = query(&signed).rsplit_once("sig=").unwrap().1.to_string();
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let q = replace_param(query(&signed), "sig", &flipped);
        assert_eq!(s.verify(LinkKind::Open, &q), Err(LinkError::Tampered));
        let q = replace_param(query(&signed), "sig", &sig[..sig.len() - 2]);
        assert_eq!(s.verify(LinkKind::Open, &q), Err(LinkError::Tampered));
        let q = replace_param(query(&signed), "sig", "not base64 !");
        assert_eq!(s.verify(LinkKind::Open, &q), Err(LinkError::Tampered));
        let q = query(&signed).rsplit_once("&sig=").unwrap().0;
        assert_eq!(s.verify(LinkKind::Open, q), Err(LinkError::Unsigned));
        assert_eq!(s.verify(LinkKind::Click, "url=https%3A%2F%2Fevil.example"), Err(LinkError::Unsigned));
        assert_eq!(s.verify(LinkKind::Click, ""), Err(LinkError::Unsigned));
    }

    #[test]
    fn a_link_on_the_wrong_route_is_refused_with_its_kind() {
        let s = signer();
        let open = s.sign(&Link::Open, &subject());
        assert_eq!(
            s.verify(LinkKind::Unsubscribe, query(&open)),
            Err(LinkError::WrongKind { expected: LinkKind::Unsubscribe, actual: LinkKind::Open })
        );
        let click = s.sign(&click(), &subject());
        assert_eq!(
            s.verify(LinkKind::Open, query(&click)),
            Err(LinkError::WrongKind { expected: LinkKind::Open, actual: LinkKind::Click })
        );
        // An open pixel's query carries no `url`: on the click route it cannot redirect.
        assert_eq!(
            s.verify(LinkKind::Click, query(&open)),
            Err(LinkError::WrongKind { expected: LinkKind::Click, actual: LinkKind::Open })
        );
    }

    #[test]
    fn another_secret_does_not_verify() {
        let signed = signer().sign(&Link::Unsubscribe, &subject());
        assert_eq!(LinkSigner::new(b"other").verify(LinkKind::Unsubscribe, query(&signed)), Err(LinkError::Tampered));
    }

    #[test]
    fn malformed_queries_are_refused_without_panicking() {
        let s = signer();
        let signed = s.sign(&Link::Open, &subject());
        let doubled = format!("{}&e=enr-1", query(&signed));
        assert!(matches!(s.verify(LinkKind::Open, &doubled), Err(LinkError::Malformed(_))));
        let no_contact = query(&signed).replace("&c=ada%40example.com", "");
        assert!(matches!(s.verify(LinkKind::Open, &no_contact), Err(LinkError::Malformed(_))));
        assert!(matches!(s.verify(LinkKind::Open, "e=%FF&s=1&c=2&sig=AAAA"), Err(LinkError::Malformed(_))));
        for hostile in ["&&&", "=", "sig", "sig=", "e=%&sig=%%", "\u{0}\n=\r", "sig=\u{1F600}"] {
            let _ = s.verify(LinkKind::Click, hostile);
        }
        // Unknown parameters (a gateway's) are ignored.
        let extra = format!("{}&utm_source=gateway", query(&signed));
        assert!(s.verify(LinkKind::Open, &extra).is_ok());
    }

    #[test]
    fn a_signed_link_to_a_non_http_target_or_an_out_of_range_score_does_not_verify() {
        let s = signer();
        for url in ["javascript:alert(1)", "https://x.example/\r\nSet-Cookie: a=b", "http://", "//evil.example"] {
            let signed = s.sign(&Link::Click { url: url.into() }, &subject());
            assert!(matches!(s.verify(LinkKind::Click, query(&signed)), Err(LinkError::Malformed(_))), "{url:?}");
        }
        let eleven = s.sign(&Link::Survey { survey: Survey::Nps, score: 11 }, &subject());
        assert!(matches!(s.verify(LinkKind::Survey, query(&eleven)), Err(LinkError::Malformed(_))));
        let zero = s.sign(&Link::Survey { survey: Survey::Csat, score: 0 }, &subject());
        assert!(matches!(s.verify(LinkKind::Survey, query(&zero)), Err(LinkError::Malformed(_))));
    }

    #[test]
    fn fields_cannot_be_shifted_between_parameters() {
        // Length prefixes: ("ab", "c") and ("a", "bc") sign differently.
        let s = signer();
        let a = LinkSubject { enrollment: "ab".into(), step: "c".into(), contact: "x".into() };
        let signed = s.sign(&Link::Open, &a);
        let shifted = query(&signed).replace("e=ab&s=c", "e=a&s=bc");
        assert_eq!(s.verify(LinkKind::Open, &shifted), Err(LinkError::Tampered));
    }

    #[test]
    fn a_survey_page_link_signs_the_survey_and_answers_nothing() {
        let s = signer();
        let page = s.sign(&Link::SurveyPage { survey: Survey::Nps }, &subject());
        assert!(page.starts_with("/s/page?e=enr-42&") && page.contains("&q=nps&sig="), "{page}");
        assert!(!page.contains("score="), "{page}");
        let verified = s.verify(LinkKind::SurveyPage, query(&page)).unwrap();
        assert_eq!(verified, VerifiedLink { subject: subject(), link: Link::SurveyPage { survey: Survey::Nps } });
        // Another survey, another contact or a forged score is tampering.
        let q = replace_param(query(&page), "q", "csat");
        assert_eq!(s.verify(LinkKind::SurveyPage, &q), Err(LinkError::Tampered));
        let q = replace_param(query(&page), "c", "eve%40example.com");
        assert_eq!(s.verify(LinkKind::SurveyPage, &q), Err(LinkError::Tampered));
        let with_score = query(&page).replace("&sig=", "&score=10&sig=");
        assert_eq!(
            s.verify(LinkKind::Survey, &with_score),
            Err(LinkError::WrongKind { expected: LinkKind::Survey, actual: LinkKind::SurveyPage })
        );
        // A page link is not an answer, and an answer is not a page.
        assert!(matches!(s.verify(LinkKind::Survey, query(&page)), Err(LinkError::WrongKind { .. })));
        let answer = s.sign(&Link::Survey { survey: Survey::Nps, score: 9 }, &subject());
        assert_eq!(
            s.verify(LinkKind::SurveyPage, query(&answer)),
            Err(LinkError::WrongKind { expected: LinkKind::SurveyPage, actual: LinkKind::Survey })
        );
        let unsigned = query(&page).rsplit_once("&sig=").unwrap().0;
        assert_eq!(s.verify(LinkKind::SurveyPage, unsigned), Err(LinkError::Unsigned));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let text = format!("{:?}", LinkSigner::new(b"super-secret-value"));
        assert!(!text.contains("super-secret"), "{text}");
        assert!(text.contains("redacted"));
    }

    /// Any link for any subject, built from arbitrary text.
    fn any_link() -> impl proptest::strategy::Strategy<Value = Link> {
        use proptest::prelude::*;
        let survey = prop_oneof![Just(Survey::Nps), Just(Survey::Csat)];
        prop_oneof![
            "https?://[a-z.]{1,12}/\\PC{0,30}".prop_map(|url| Link::Click { url }),
            Just(Link::Open),
            Just(Link::Unsubscribe),
            (survey.clone(), 0u8..=10).prop_map(|(survey, score)| Link::Survey {
                survey,
                score: score.clamp(*survey.scores().start(), *survey.scores().end())
            }),
            survey.prop_map(|survey| Link::SurveyPage { survey }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Arbitrary query strings, on every route, never panic and never verify.
        #[test]
        fn an_arbitrary_query_never_verifies(
            query in "((e|s|c|url|q|score|sig|x)=(?s).{0,12}&?){0,8}|(?s).{0,80}",
        ) {
            let s = signer();
            for kind in LinkKind::ALL {
                proptest::prop_assert!(s.verify(kind, &query).is_err(), "{query:?} verified as {kind:?}");
            }
        }

        /// A signed link verifies as itself; changed anywhere — one character replaced,
        /// inserted or removed — it is refused, or (when the change leaves the decoded
        /// parameters as they were, e.g. `%2F` for `%2f`, or adds an unknown parameter)
        /// verifies as exactly the link that was signed, never as another.
        #[test]
        fn a_tampered_link_never_verifies_as_another(
            link in any_link(),
            enrollment in "(?s).{0,12}",
            step in "(?s).{0,12}",
            contact in "(?s).{0,12}",
            at in 0usize..400,
            edit in 0u8..3,
            c in proptest::char::any(),
        ) {
            let s = signer();
            let subject = LinkSubject { enrollment, step, contact };
            let signed = s.sign(&link, &subject);
            let kind = link.kind();
            let original = VerifiedLink { subject, link };
            proptest::prop_assert_eq!(s.verify(kind, query(&signed)), Ok(original.clone()));
            let mut chars: Vec<char> = query(&signed).chars().collect();
            let at = at % (chars.len() + 1);
            match edit {
                0 if at < chars.len() => chars[at] = c,
                1 => chars.insert(at, c),
                _ if at < chars.len() => {
                    chars.remove(at);
                }
                _ => chars.push(c),
            }
            let tampered: String = chars.into_iter().collect();
            for route in LinkKind::ALL {
                if let Ok(verified) = s.verify(route, &tampered) {
                    proptest::prop_assert_eq!(route, kind);
                    proptest::prop_assert_eq!(&verified, &original, "{} verified as another link", tampered);
                }
            }
        }
    }
}
