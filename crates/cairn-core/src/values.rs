//! Typed values that cannot be invalid once built: parse, don't validate.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a raw value could not become a typed one. The message is written for the person
/// who typed the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// Which system an external id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The CRM (Salesforce, HubSpot, …).
    Crm,
    /// The billing system (Stripe, Chargebee, …).
    Billing,
    /// The product itself: Segment `userId` and `groupId` live here.
    Product,
    /// The support desk (Zendesk, Intercom, …).
    Support,
}

impl Source {
    /// Every source, in a stable order.
    pub const ALL: [Source; 4] = [Source::Crm, Source::Billing, Source::Product, Source::Support];

    /// The lowercase name used in files, URLs and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Crm => "crm",
            Source::Billing => "billing",
            Source::Product => "product",
            Source::Support => "support",
        }
    }

    /// Parses `crm`, `billing`, `product` or `support`.
    pub fn parse(s: &str) -> Result<Source, ValueError> {
        Source::ALL
            .into_iter()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| ValueError(format!("unknown source `{s}`: expected one of crm, billing, product, support")))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an id names an account or a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    /// A customer company.
    Account,
    /// A person at an account.
    Contact,
}

impl EntityKind {
    /// The lowercase name used in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Account => "account",
            EntityKind::Contact => "contact",
        }
    }
}

/// An email address, lowercased, with a non-empty local part and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an address such as `Ada@Example.com` (stored as `ada@example.com`).
    pub fn parse(raw: &str) -> Result<Email, ValueError> {
        let s = raw.trim().to_ascii_lowercase();
        let bad = || ValueError(format!("`{raw}` is not an email address (expected name@domain.tld)"));
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || !domain_ok || local.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(bad());
        }
        Ok(Email(s))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`, used to match a contact to an account by its domains.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl TryFrom<String> for Email {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Normalises an account domain (`https://www.Acme.com/` → `acme.com`).
pub fn normalize_domain(raw: &str) -> Result<String, ValueError> {
    let mut d = raw.trim().to_ascii_lowercase();
    for prefix in ["https://", "http://"] {
        if let Some(rest) = d.strip_prefix(prefix) {
            d = rest.to_string();
        }
    }
    if let Some(rest) = d.strip_prefix("www.") {
        d = rest.to_string();
    }
    let d = d.trim_end_matches('/').to_string();
    let ok = d.contains('.')
        && !d.starts_with('.')
        && !d.ends_with('.')
        && d.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok { Ok(d) } else { Err(ValueError(format!("`{raw}` is not a domain (expected something like acme.com)"))) }
}

/// An amount of money in integer minor units (cents). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    /// Parses a decimal amount with at most two decimal places: `12000`, `12000.5`,
    /// `12000.50`. Negative amounts are refused: a contract line is never negative.
    pub fn parse_decimal(raw: &str) -> Result<Money, ValueError> {
        let s = raw.trim();
        let bad = |why: &str| ValueError(format!("`{raw}` is not an amount: {why}"));
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.starts_with('-') {
            return Err(bad("amounts cannot be negative"));
        }
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected digits with at most two decimal places, like 1200.50"));
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) || (s.contains('.') && frac.is_empty()) {
            return Err(bad("expected digits with at most two decimal places, like 1200.50"));
        }
        if frac.len() > 2 {
            return Err(bad("more than two decimal places"));
        }
        let whole: i64 = whole.parse().map_err(|_| bad("too large"))?;
        let mut cents_part: i64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad("bad decimals"))? };
        if frac.len() == 1 {
            cents_part *= 10;
        }
        whole.checked_mul(100).and_then(|c| c.checked_add(cents_part)).map(Money).ok_or_else(|| bad("too large"))
    }

    /// The amount in cents.
    pub fn cents(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, (self.0 % 100).abs())
    }
}

/// Parses an ISO `YYYY-MM-DD` date.
pub fn parse_date(raw: &str) -> Result<jiff::civil::Date, ValueError> {
    let s = raw.trim();
    if s.len() != 10 {
        return Err(ValueError(format!("`{raw}` is not a date: expected YYYY-MM-DD")));
    }
    s.parse::<jiff::civil::Date>().map_err(|_| ValueError(format!("`{raw}` is not a date: expected YYYY-MM-DD")))
}

/// Checks an IANA time zone name such as `Europe/Paris` against the bundled database.
pub fn parse_time_zone(raw: &str) -> Result<String, ValueError> {
    let s = raw.trim();
    jiff::tz::TimeZone::get(s).map(|_| s.to_string()).map_err(|_| {
        ValueError(format!(
            "`{raw}` is not a time zone: expected an IANA name such as Europe/Paris or America/New_York"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_decimals_exactly() {
        assert_eq!(Money::parse_decimal("12000").unwrap().cents(), 1_200_000);
        assert_eq!(Money::parse_decimal("12000.5").unwrap().cents(), 1_200_050);
        assert_eq!(Money::parse_decimal("0.07").unwrap().cents(), 7);
        assert_eq!(Money::parse_decimal(" 19.99 ").unwrap().to_string(), "19.99");
        for bad in ["", "-5", "1.234", "12,000", "abc", "1.", ".5", "1e5", "99999999999999999999"] {
            assert!(Money::parse_decimal(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn email_is_lowercased_and_has_a_domain() {
        let e = Email::parse(" Ada@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "ada@example.com");
        assert_eq!(e.domain(), "example.com");
        for bad in ["ada", "@example.com", "ada@", "ada@localhost", "a b@x.com", "ada@x..com."] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn domains_are_normalised() {
        assert_eq!(normalize_domain("https://www.Acme.com/").unwrap(), "acme.com");
        assert!(normalize_domain("acme").is_err());
    }

    #[test]
    fn dates_and_time_zones() {
        assert_eq!(parse_date("2026-02-28").unwrap().to_string(), "2026-02-28");
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("26-02-01").is_err());
        assert!(parse_time_zone("Europe/Paris").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }
}
