//! Who the customers are: accounts with an industry, a size, a plan, seats and a price,
//! a region and its time zones, a CSM model, and contacts with roles. The distributions
//! are those of a mid-market B2B analytics vendor: mostly small customers, a long tail of
//! large ones (employees log-normal within each size band), plans and seats following
//! size, ARR = seats × the plan's price per seat.

use jiff::civil::Date;
use serde::Serialize;

use crate::rng::Rng;

/// The size band of a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// Under about 200 employees.
    Small,
    /// About 200 to 2,000.
    Mid,
    /// Over about 2,000.
    Large,
}

/// A plan, with its price per seat and year in dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// $300 a seat.
    Starter,
    /// $600 a seat.
    Team,
    /// $900 a seat.
    Business,
    /// $1,200 a seat.
    Enterprise,
}

impl Plan {
    /// The name in the CRM.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Starter => "starter",
            Plan::Team => "team",
            Plan::Business => "business",
            Plan::Enterprise => "enterprise",
        }
    }

    /// Dollars per seat and year.
    pub fn seat_price(self) -> u64 {
        match self {
            Plan::Starter => 300,
            Plan::Team => 600,
            Plan::Business => 900,
            Plan::Enterprise => 1_200,
        }
    }
}

/// A contact's role at the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Set the product up; invites the others.
    Admin,
    /// The internal advocate: the most active user.
    Champion,
    /// Everyone else who uses it.
    User,
    /// Signs the renewal; rarely logs in.
    EconomicBuyer,
}

impl Role {
    /// The name in the CRM (what `role = 'admin'` reads).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Champion => "champion",
            Role::User => "user",
            Role::EconomicBuyer => "economic_buyer",
        }
    }
}

pub(crate) const INDUSTRIES: [&str; 8] =
    ["software", "fintech", "healthcare", "retail", "logistics", "education", "manufacturing", "media"];

const NAME_FIRST: [&str; 16] = [
    "Northwind",
    "Bluebird",
    "Granite",
    "Lumen",
    "Harbor",
    "Copper",
    "Juniper",
    "Atlas",
    "Beacon",
    "Cedar",
    "Summit",
    "Orchid",
    "Pioneer",
    "Quarry",
    "Riverside",
    "Tidal",
];
const NAME_SECOND: [&str; 8] = ["Labs", "Systems", "Group", "Health", "Logistics", "Retail", "Works", "Partners"];
const PEOPLE_FIRST: [&str; 16] = [
    "Ada", "Bo", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena", "Mateo", "Nora", "Omar",
    "Priya",
];
const PEOPLE_LAST: [&str; 12] =
    ["Smith", "Garcia", "Müller", "Tanaka", "Okafor", "Rossi", "Dubois", "Kim", "Novak", "Silva", "Berg", "Khan"];

/// Regions and the time zones of their customers.
const REGIONS: [(&str, [&str; 3]); 3] = [
    ("EMEA", ["Europe/London", "Europe/Berlin", "Europe/Paris"]),
    ("AMER", ["America/New_York", "America/Chicago", "America/Los_Angeles"]),
    ("APAC", ["Asia/Tokyo", "Asia/Singapore", "Australia/Sydney"]),
];

/// Every time zone a contact can be in.
pub(crate) fn time_zones() -> impl Iterator<Item = &'static str> {
    REGIONS.iter().flat_map(|(_, zones)| zones.iter().copied())
}

/// The CSMs of the named accounts (the digital team is the example workspace's pool).
pub(crate) const NAMED_CSMS: [&str; 4] =
    ["maria@acme.example", "tom@acme.example", "yuki@acme.example", "sam@acme.example"];
pub(crate) const DIGITAL_CSMS: [&str; 3] = ["ana@acme.example", "bo@acme.example", "chen@acme.example"];

/// One customer contact.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    /// Id in the CRM (`A0001-03`).
    pub external_id: String,
    /// Id in the product (the `userId` of its events).
    pub product_id: String,
    /// Email address.
    pub email: String,
    /// Full name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// IANA time zone.
    pub time_zone: &'static str,
    /// How active this person is, relative to the account (0.5 to 1.3).
    #[serde(skip)]
    pub(crate) vigor: f64,
}

/// What a generated account is, before anything happens to it.
#[derive(Debug, Clone, Serialize)]
pub struct Firmographics {
    /// Id in the CRM (`A0001`).
    pub external_id: String,
    /// Id in the product (the `groupId` of its events).
    pub product_id: String,
    /// Company name.
    pub name: String,
    /// Email domain.
    pub domain: String,
    /// Industry.
    pub industry: &'static str,
    /// Employees.
    pub employees: u32,
    /// Size band.
    pub size: Size,
    /// Plan.
    pub plan: Plan,
    /// Licensed seats at the start.
    pub seats: u32,
    /// EMEA, AMER or APAC.
    pub region: &'static str,
    /// `digital`, `pooled` or `named`.
    pub csm_pool: &'static str,
    /// The owning CSM.
    pub owner_email: &'static str,
    /// First day of the first contract.
    pub start_date: Date,
    /// Its people; the first is the admin, the second the economic buyer.
    pub contacts: Vec<Contact>,
}

/// Draws account number `index` (its own stream of `seed`), starting on `start_date`.
pub(crate) fn account(seed: u64, index: usize, start_date: Date) -> Firmographics {
    let mut r = Rng::keyed(seed, &[1, index as u64]);
    let size = match r.weighted(&[0.55, 0.33, 0.12]) {
        0 => Size::Small,
        1 => Size::Mid,
        _ => Size::Large,
    };
    let (median, lo, hi) = match size {
        Size::Small => (45.0, 8.0, 199.0),
        Size::Mid => (500.0, 200.0, 1_999.0),
        Size::Large => (5_000.0, 2_000.0, 80_000.0),
    };
    let employees = r.log_normal(median, 0.7).clamp(lo, hi).round() as u32;
    let plan = match size {
        Size::Small if r.chance(0.6) => Plan::Starter,
        Size::Small => Plan::Team,
        Size::Mid if r.chance(0.35) => Plan::Team,
        Size::Mid => Plan::Business,
        Size::Large if r.chance(0.3) => Plan::Business,
        Size::Large => Plan::Enterprise,
    };
    let (seat_lo, seat_hi) = match plan {
        Plan::Starter => (5, 15),
        Plan::Team => (10, 40),
        Plan::Business => (25, 100),
        Plan::Enterprise => (60, 250),
    };
    let seats = r.int(seat_lo, seat_hi).min(employees.max(seat_lo));
    let (region, zones) = REGIONS[r.weighted(&[0.4, 0.45, 0.15])];
    let account_zone = *r.pick(&zones).unwrap_or(&"UTC");
    let (csm_pool, owner_email) = match plan {
        Plan::Enterprise => ("named", *r.pick(&NAMED_CSMS).unwrap_or(&NAMED_CSMS[0])),
        Plan::Business => ("pooled", *r.pick(&NAMED_CSMS).unwrap_or(&NAMED_CSMS[0])),
        _ => ("digital", *r.pick(&DIGITAL_CSMS).unwrap_or(&DIGITAL_CSMS[0])),
    };
    let name = format!("{} {}", r.pick(&NAME_FIRST).unwrap_or(&"Acme"), r.pick(&NAME_SECOND).unwrap_or(&"Co"),);
    let external_id = format!("A{:04}", index + 1);
    let domain = format!("{}.example", external_id.to_ascii_lowercase());
    // People in the product: between a fifth and four fifths of the seats, 3 to 60.
    let fill = r.between(0.2, 0.8);
    let people = ((f64::from(seats) * fill).round() as usize).clamp(3, 60);
    let contacts = (0..people)
        .map(|j| {
            let role = match j {
                0 => Role::Admin,
                1 => Role::EconomicBuyer,
                2 => Role::Champion,
                _ => Role::User,
            };
            // Most work where the account is; some elsewhere in the region.
            let time_zone = if r.chance(0.8) { account_zone } else { *r.pick(&zones).unwrap_or(&account_zone) };
            let first = r.pick(&PEOPLE_FIRST).unwrap_or(&"Sam");
            let last = r.pick(&PEOPLE_LAST).unwrap_or(&"Lee");
            Contact {
                external_id: format!("{external_id}-{:02}", j + 1),
                product_id: format!("u-{external_id}-{:02}", j + 1),
                email: format!("{}.{}{}@{domain}", first.to_ascii_lowercase(), ascii(last), j + 1),
                name: format!("{first} {last}"),
                role,
                time_zone,
                vigor: r.between(0.5, 1.3),
            }
        })
        .collect();
    Firmographics {
        product_id: format!("acct-{external_id}"),
        name,
        domain,
        industry: r.pick(&INDUSTRIES).unwrap_or(&"software"),
        employees,
        size,
        plan,
        seats,
        region,
        csm_pool,
        owner_email,
        start_date,
        contacts,
        external_id,
    }
}

/// A name as the local part of an address.
fn ascii(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'ü' => 'u',
            c if c.is_ascii_alphabetic() => c.to_ascii_lowercase(),
            _ => 'x',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> Date {
        Date::constant(2026, 1, 1)
    }

    #[test]
    fn sizes_plans_and_seats_follow_the_distributions() {
        let accounts: Vec<Firmographics> = (0..3000).map(|i| account(9, i, day())).collect();
        let share = |f: &dyn Fn(&Firmographics) -> bool| accounts.iter().filter(|a| f(a)).count() as f64 / 3000.0;
        // Sizes drawn 55/33/12: within 3 points (about 3.3 standard errors at n = 3000).
        assert!((share(&|a| a.size == Size::Small) - 0.55).abs() < 0.03);
        assert!((share(&|a| a.size == Size::Large) - 0.12).abs() < 0.03);
        // Plans follow size: no small enterprise customer, no large starter one.
        assert!(accounts.iter().all(|a| !(a.size == Size::Small && a.plan == Plan::Enterprise)));
        assert!(accounts.iter().all(|a| !(a.size == Size::Large && a.plan == Plan::Starter)));
        for a in &accounts {
            assert!(a.seats >= 5 && a.seats <= 250, "{a:?}");
            assert!(a.contacts.len() >= 3 && a.contacts.len() <= 60);
            assert_eq!(a.contacts[0].role, Role::Admin);
            assert_eq!(a.contacts[1].role, Role::EconomicBuyer);
            assert!(a.name.chars().all(|c| c != ','), "CSV-safe names");
            assert!(a.contacts.iter().all(|c| c.email.is_ascii() && c.email.ends_with(&a.domain)));
        }
        // Employees: medians near the bands' (45, 500, 5,000), within a factor 1.3.
        let median = |s: Size| {
            let mut e: Vec<u32> = accounts.iter().filter(|a| a.size == s).map(|a| a.employees).collect();
            e.sort_unstable();
            f64::from(e[e.len() / 2])
        };
        assert!((35.0..60.0).contains(&median(Size::Small)), "{}", median(Size::Small));
        assert!((380.0..650.0).contains(&median(Size::Mid)), "{}", median(Size::Mid));
        assert!((3_800.0..6_500.0).contains(&median(Size::Large)), "{}", median(Size::Large));
        // ARR: median of seats × price per seat in the low tens of thousands.
        let mut arr: Vec<u64> = accounts.iter().map(|a| u64::from(a.seats) * a.plan.seat_price()).collect();
        arr.sort_unstable();
        assert!((5_000..40_000).contains(&arr[arr.len() / 2]), "{}", arr[arr.len() / 2]);
    }
}
