//! CSV import rows: from a header and a record of text fields to typed rows, with errors
//! that name the line, the column and the reason.
//!
//! Reading the file is the caller's job; this module only turns text into values.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde_json::Value;

use crate::values::{Email, Money, Source, normalize_domain, parse_date, parse_time_zone};

/// What a CSV file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// `external_id,name,…`
    Accounts,
    /// `external_id,account_external_id,email,name,role,timezone,…`
    Contacts,
    /// `id,account_id,start_date,end_date,arr,…`
    Subscriptions,
}

impl ImportKind {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Accounts => "accounts",
            ImportKind::Contacts => "contacts",
            ImportKind::Subscriptions => "subscriptions",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            ImportKind::Accounts => &["external_id", "name"],
            ImportKind::Contacts => &["external_id"],
            ImportKind::Subscriptions => &["id", "account_id", "start_date", "end_date", "arr"],
        }
    }

    fn known(self) -> &'static [&'static str] {
        match self {
            ImportKind::Accounts => &[
                "external_id",
                "name",
                "industry",
                "employees",
                "plan",
                "seats",
                "owner_email",
                "start_date",
                "renewal_date",
                "domains",
                "crm_id",
                "billing_id",
                "product_id",
                "support_id",
            ],
            ImportKind::Contacts => &[
                "external_id",
                "account_external_id",
                "email",
                "name",
                "role",
                "timezone",
                "crm_id",
                "billing_id",
                "product_id",
                "support_id",
            ],
            ImportKind::Subscriptions => &["id", "account_id", "start_date", "end_date", "arr", "seats", "product"],
        }
    }
}

/// A row (or the header) that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("line {line}{}: {reason}", column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default())]
pub struct RowError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// What is wrong and what was expected.
    pub reason: String,
}

/// A field that is either set to a value or cleared (an empty cell clears it).
pub type Field<T> = Option<Option<T>>;

/// Custom traits of a row: a value, or `Value::Null` to remove the trait.
pub type Traits = BTreeMap<String, Value>;

/// One account from a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    /// 1-based line number.
    pub line: u64,
    /// The id in the import's source system.
    pub external_id: String,
    /// Company name.
    pub name: String,
    /// Known typed columns (outer `None`: column absent, leave as is).
    pub industry: Field<String>,
    /// Number of employees.
    pub employees: Field<i64>,
    /// Plan name.
    pub plan: Field<String>,
    /// Licensed seats.
    pub seats: Field<i64>,
    /// Owner CSM's email.
    pub owner_email: Field<Email>,
    /// Contract start (the journey anchor by default).
    pub start_date: Field<Date>,
    /// Next renewal, if the file carries one.
    pub renewal_date: Field<Date>,
    /// Email domains of the account (column `domains`, separated by `;` or spaces).
    pub domains: Option<Vec<String>>,
    /// Ids in other sources (`crm_id`, `billing_id`, `product_id`, `support_id`).
    pub other_ids: Vec<(Source, String)>,
    /// Every other column.
    pub traits: Traits,
}

/// One contact from a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRow {
    /// 1-based line number.
    pub line: u64,
    /// The id in the import's source system.
    pub external_id: String,
    /// The account's id in the same source, if given.
    pub account_external_id: Option<String>,
    /// Email address.
    pub email: Field<Email>,
    /// Full name.
    pub name: Field<String>,
    /// Role (admin, user, champion, economic buyer, …).
    pub role: Field<String>,
    /// IANA time zone.
    pub timezone: Field<String>,
    /// Ids in other sources.
    pub other_ids: Vec<(Source, String)>,
    /// Every other column.
    pub traits: Traits,
}

/// One subscription (contract) line from a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRow {
    /// 1-based line number.
    pub line: u64,
    /// The line's id.
    pub id: String,
    /// The account's external id in the import's source.
    pub account_external_id: String,
    /// First day the line is active.
    pub start_date: Date,
    /// Last day the line is active (inclusive).
    pub end_date: Date,
    /// Annual recurring revenue of the line.
    pub arr: Money,
    /// Seats on the line.
    pub seats: Option<i64>,
    /// Product name.
    pub product: Option<String>,
    /// Every other column.
    pub traits: Traits,
}

/// The header of a CSV file, checked against what its kind needs.
#[derive(Debug, Clone)]
pub struct Header {
    kind: ImportKind,
    names: Vec<String>,
}

impl Header {
    /// Checks a header: required columns present, no column twice, no empty name.
    pub fn parse(kind: ImportKind, names: &[&str]) -> Result<Header, RowError> {
        let names: Vec<String> =
            names.iter().map(|n| n.trim().trim_start_matches('\u{feff}').to_ascii_lowercase()).collect();
        let err =
            |column: Option<&str>, reason: String| RowError { line: 1, column: column.map(str::to_string), reason };
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() {
                return Err(err(None, format!("column {} has no name in the header", i + 1)));
            }
            if names[..i].contains(n) {
                return Err(err(Some(n), "appears twice in the header".into()));
            }
        }
        let missing: Vec<&str> = kind.required().iter().copied().filter(|r| !names.iter().any(|n| n == r)).collect();
        if !missing.is_empty() {
            return Err(err(
                None,
                format!(
                    "missing column{} {} ({} files need {})",
                    if missing.len() > 1 { "s" } else { "" },
                    missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
                    kind.as_str(),
                    kind.required().join(",")
                ),
            ));
        }
        Ok(Header { kind, names })
    }

    /// The column names, lowercased.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn cells<'a>(&'a self, line: u64, fields: &'a [&'a str]) -> Result<Cells<'a>, RowError> {
        if fields.len() != self.names.len() {
            return Err(RowError {
                line,
                column: None,
                reason: format!("has {} fields but the header has {}", fields.len(), self.names.len()),
            });
        }
        Ok(Cells { line, header: self, fields })
    }
}

struct Cells<'a> {
    line: u64,
    header: &'a Header,
    fields: &'a [&'a str],
}

impl<'a> Cells<'a> {
    fn err(&self, column: &str, reason: impl Into<String>) -> RowError {
        RowError { line: self.line, column: Some(column.to_string()), reason: reason.into() }
    }

    /// `None`: column absent. `Some(None)`: empty cell. `Some(Some(text))`: a value.
    fn get(&self, column: &str) -> Option<Option<&'a str>> {
        let i = self.header.names.iter().position(|n| n == column)?;
        // `cells` checked that there are as many fields as names.
        let v = self.fields.get(i)?.trim();
        Some(if v.is_empty() { None } else { Some(v) })
    }

    fn required(&self, column: &str) -> Result<String, RowError> {
        match self.get(column) {
            Some(Some(v)) => Ok(v.to_string()),
            _ => Err(self.err(column, "is empty but required")),
        }
    }

    fn text(&self, column: &str) -> Field<String> {
        self.get(column).map(|v| v.map(str::to_string))
    }

    fn typed<T>(&self, column: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Field<T>, RowError> {
        match self.get(column) {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(v)) => parse(v).map(|t| Some(Some(t))).map_err(|reason| self.err(column, reason)),
        }
    }

    fn count(&self, column: &str) -> Result<Field<i64>, RowError> {
        self.typed(column, |v| match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            _ => Err(format!("`{v}` is not a whole number ≥ 0")),
        })
    }

    fn date(&self, column: &str) -> Result<Field<Date>, RowError> {
        self.typed(column, |v| parse_date(v).map_err(|e| e.0))
    }

    fn other_ids(&self, own: &str) -> Result<Vec<(Source, String)>, RowError> {
        let mut ids = Vec::new();
        for source in Source::ALL {
            let column = format!("{}_id", source.as_str());
            if column == own {
                continue;
            }
            if let Some(Some(v)) = self.get(&column) {
                check_id_text(self, &column, v)?;
                ids.push((source, v.to_string()));
            }
        }
        Ok(ids)
    }

    fn traits(&self) -> Traits {
        let known = self.header.kind.known();
        self.header
            .names
            .iter()
            .zip(self.fields)
            .filter(|(n, _)| !known.contains(&n.as_str()))
            .map(|(n, v)| (n.clone(), infer_trait_value(v)))
            .collect()
    }
}

/// Reads a custom trait cell: numbers and booleans are typed, empty cells clear the
/// trait, everything else is text.
pub fn infer_trait_value(cell: &str) -> Value {
    let v = cell.trim();
    if v.is_empty() {
        return Value::Null;
    }
    match v {
        "true" | "TRUE" | "True" => return Value::Bool(true),
        "false" | "FALSE" | "False" => return Value::Bool(false),
        _ => {}
    }
    let numeric = v.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || b == b'.' || (i == 0 && b == b'-'));
    let leading_zero = v.len() > 1 && v.starts_with('0') && !v.starts_with("0.");
    if numeric && !leading_zero {
        if let Ok(n) = v.parse::<i64>() {
            return Value::from(n);
        }
        if let Ok(f) = v.parse::<f64>()
            && let Some(n) = serde_json::Number::from_f64(f)
        {
            return Value::Number(n);
        }
    }
    Value::String(v.to_string())
}

/// Longest accepted id, in bytes (as for the tracking API's ids).
const MAX_ID_BYTES: usize = crate::tracking::MAX_ID_BYTES;

fn check_id(cells: &Cells<'_>, column: &str) -> Result<String, RowError> {
    let id = cells.required(column)?;
    check_id_text(cells, column, &id)?;
    Ok(id)
}

/// An id is at most [`MAX_ID_BYTES`] bytes, without control characters.
fn check_id_text(cells: &Cells<'_>, column: &str, id: &str) -> Result<(), RowError> {
    if id.len() > MAX_ID_BYTES {
        return Err(cells.err(column, format!("is {} bytes long; the limit is {MAX_ID_BYTES} bytes", id.len())));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(
            cells.err(column, format!("must not contain control characters (found U+{:04X}); remove it", u32::from(c)))
        );
    }
    Ok(())
}

/// Parses one accounts row.
pub fn parse_account(header: &Header, line: u64, fields: &[&str]) -> Result<AccountRow, RowError> {
    let c = header.cells(line, fields)?;
    let domains = match c.get("domains") {
        None => None,
        Some(None) => Some(Vec::new()),
        Some(Some(v)) => {
            let mut ds = Vec::new();
            for d in v.split(|ch: char| ch == ';' || ch == ',' || ch.is_whitespace()).filter(|d| !d.is_empty()) {
                let d = normalize_domain(d).map_err(|e| c.err("domains", e.0))?;
                if !ds.contains(&d) {
                    ds.push(d);
                }
            }
            ds.sort();
            Some(ds)
        }
    };
    Ok(AccountRow {
        line,
        external_id: check_id(&c, "external_id")?,
        name: c.required("name")?,
        industry: c.text("industry"),
        employees: c.count("employees")?,
        plan: c.text("plan"),
        seats: c.count("seats")?,
        owner_email: c.typed("owner_email", |v| Email::parse(v).map_err(|e| e.0))?,
        start_date: c.date("start_date")?,
        renewal_date: c.date("renewal_date")?,
        domains,
        other_ids: c.other_ids("")?,
        traits: c.traits(),
    })
}

/// Parses one contacts row.
pub fn parse_contact(header: &Header, line: u64, fields: &[&str]) -> Result<ContactRow, RowError> {
    let c = header.cells(line, fields)?;
    Ok(ContactRow {
        line,
        external_id: check_id(&c, "external_id")?,
        account_external_id: c.get("account_external_id").flatten().map(str::to_string),
        email: c.typed("email", |v| Email::parse(v).map_err(|e| e.0))?,
        name: c.text("name"),
        role: c.text("role").map(|r| r.map(|r| r.to_ascii_lowercase())),
        timezone: c.typed("timezone", |v| parse_time_zone(v).map_err(|e| e.0))?,
        other_ids: c.other_ids("")?,
        traits: c.traits(),
    })
}

/// Parses one subscriptions row. A line is active on every day from `start_date` to
/// `end_date`, both inclusive.
pub fn parse_subscription(header: &Header, line: u64, fields: &[&str]) -> Result<SubscriptionRow, RowError> {
    let c = header.cells(line, fields)?;
    let start_date = c.date("start_date")?.flatten().ok_or_else(|| c.err("start_date", "is empty but required"))?;
    let end_date = c.date("end_date")?.flatten().ok_or_else(|| c.err("end_date", "is empty but required"))?;
    if end_date < start_date {
        return Err(c.err("end_date", format!("{end_date} is before start_date {start_date}")));
    }
    let arr = c
        .typed("arr", |v| Money::parse_decimal(v).map_err(|e| e.0))?
        .flatten()
        .ok_or_else(|| c.err("arr", "is empty but required"))?;
    Ok(SubscriptionRow {
        line,
        id: check_id(&c, "id")?,
        account_external_id: check_id(&c, "account_id")?,
        start_date,
        end_date,
        arr,
        seats: c.count("seats")?.flatten(),
        product: c.text("product").flatten(),
        traits: c.traits(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: ImportKind, h: &str) -> Header {
        Header::parse(kind, &h.split(',').collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn account_row_types_known_columns_and_keeps_the_rest_as_traits() {
        let h = header(
            ImportKind::Accounts,
            "external_id,name,plan,seats,start_date,domains,billing_id,region,nps_last,is_partner",
        );
        let row = parse_account(
            &h,
            2,
            &["A1", "Acme", "team", "25", "2026-01-15", "acme.com; acme.io", "cus_9", "EMEA", "42", "true"],
        )
        .unwrap();
        assert_eq!(row.external_id, "A1");
        assert_eq!(row.seats, Some(Some(25)));
        assert_eq!(row.start_date.unwrap().unwrap().to_string(), "2026-01-15");
        assert_eq!(row.domains.unwrap(), vec!["acme.com", "acme.io"]);
        assert_eq!(row.other_ids, vec![(Source::Billing, "cus_9".to_string())]);
        assert_eq!(row.traits["region"], Value::from("EMEA"));
        assert_eq!(row.traits["nps_last"], Value::from(42));
        assert_eq!(row.traits["is_partner"], Value::from(true));
        assert_eq!(row.industry, None, "absent column leaves the value alone");
    }

    #[test]
    fn errors_name_line_column_and_reason() {
        let h = header(ImportKind::Accounts, "external_id,name,seats,owner_email");
        let e = parse_account(&h, 7, &["A1", "Acme", "many", "x"]).unwrap_err();
        assert_eq!(e.to_string(), "line 7, column `seats`: `many` is not a whole number ≥ 0");
        let e = parse_account(&h, 8, &["A1", "", "3", "a@b.co"]).unwrap_err();
        assert_eq!(e.to_string(), "line 8, column `name`: is empty but required");
        let e = parse_account(&h, 9, &["A1"]).unwrap_err();
        assert_eq!(e.to_string(), "line 9: has 1 fields but the header has 4");
    }

    #[test]
    fn header_problems_are_reported_once_for_the_file() {
        let e = Header::parse(ImportKind::Subscriptions, &["id", "account_id", "arr"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: missing columns `start_date`, `end_date` (subscriptions files need id,account_id,start_date,end_date,arr)"
        );
        let e = Header::parse(ImportKind::Accounts, &["external_id", "name", "Name"]).unwrap_err();
        assert_eq!(e.to_string(), "line 1, column `name`: appears twice in the header");
    }

    #[test]
    fn subscription_rows_check_dates_and_money() {
        let h = header(ImportKind::Subscriptions, "id,account_id,start_date,end_date,arr,seats");
        let row = parse_subscription(&h, 2, &["S1", "A1", "2026-01-01", "2026-12-31", "12000.50", "10"]).unwrap();
        assert_eq!(row.arr.cents(), 1_200_050);
        let e = parse_subscription(&h, 3, &["S2", "A1", "2026-02-01", "2026-01-01", "10", ""]).unwrap_err();
        assert_eq!(e.to_string(), "line 3, column `end_date`: 2026-01-01 is before start_date 2026-02-01");
        let e = parse_subscription(&h, 4, &["S3", "A1", "2026-01-01", "2026-12-31", "10.999", ""]).unwrap_err();
        assert_eq!(e.to_string(), "line 4, column `arr`: `10.999` is not an amount: more than two decimal places");
    }

    #[test]
    fn contact_rows_check_email_and_time_zone() {
        let h = header(ImportKind::Contacts, "external_id,account_external_id,email,name,role,timezone");
        let row = parse_contact(&h, 2, &["C1", "A1", "Ada@Acme.com", "Ada", "Admin", "Europe/London"]).unwrap();
        assert_eq!(row.email.unwrap().unwrap().as_str(), "ada@acme.com");
        assert_eq!(row.role, Some(Some("admin".into())));
        let e = parse_contact(&h, 3, &["C2", "", "ada@acme.com", "", "", "Paris"]).unwrap_err();
        assert!(e.to_string().starts_with("line 3, column `timezone`: `Paris` is not a time zone"));
    }

    #[test]
    fn trait_inference() {
        assert_eq!(infer_trait_value("007"), Value::from("007"), "leading zeros are ids, not numbers");
        assert_eq!(infer_trait_value("-3.5"), serde_json::json!(-3.5));
        assert_eq!(infer_trait_value(""), Value::Null);
    }
}
