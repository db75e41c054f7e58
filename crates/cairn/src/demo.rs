//! The demo customer base: a deterministic generator of accounts, contacts, subscription
//! lines and product events (the same seed gives the same data), used by `cairn demo`,
//! `cairn serve --demo` and as the load of the benchmarks.

use anyhow::Result;
use cairn_core::Source;
use cairn_core::import::{Header, ImportKind, parse_account, parse_contact, parse_subscription};
use cairn_core::tracking::{Envelope, TrackingMessage, parse_message};
use cairn_store::Store;
use jiff::{SignedDuration, Timestamp};

/// A small, fast, deterministic random number generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const INDUSTRIES: [&str; 6] = ["software", "fintech", "healthcare", "retail", "logistics", "education"];
const PLANS: [&str; 4] = ["starter", "team", "business", "enterprise"];
const ROLES: [&str; 4] = ["admin", "user", "champion", "economic_buyer"];
/// Product events, most frequent first.
pub const EVENTS: [&str; 10] = [
    "page_viewed",
    "report_created",
    "dashboard_viewed",
    "alert_set",
    "user_invited",
    "dashboard_shared",
    "export_downloaded",
    "integration_connected",
    "ticket_opened",
    "webinar_attended",
];

/// How many contacts account `i` has (2 to 60, skewed small).
pub fn contacts_of(i: usize) -> usize {
    let mut rng = Rng::new(i as u64 ^ 0xC0FFEE);
    2 + rng.below(20) as usize + if rng.below(10) == 0 { rng.below(40) as usize } else { 0 }
}

/// The CSV of `n` demo accounts.
pub fn accounts_csv(n: usize, today: jiff::civil::Date) -> String {
    let mut rng = Rng::new(1);
    // The renewal date is the end of the account's subscription line: the same draws as
    // `subscriptions_csv`, in lockstep.
    let mut lines = Rng::new(3);
    let mut out = String::from(
        "external_id,name,industry,employees,plan,seats,start_date,renewal_date,domains,product_id,region\n",
    );
    for i in 0..n {
        let renewal = today.checked_add(SignedDuration::from_hours(24 * lines.below(365) as i64)).unwrap_or(today);
        let _ = (lines.below(98_000), lines.below(100));
        let plan = PLANS[rng.below(4) as usize];
        let seats = match plan {
            "starter" => 5,
            "team" => 20,
            "business" => 50,
            _ => 200,
        };
        // Customers of the last two years, a few still onboarding.
        let start = today.checked_sub(SignedDuration::from_hours(24 * rng.below(730) as i64)).unwrap_or(today);
        out.push_str(&format!(
            "A{i:05},Company {i},{},{},{plan},{seats},{start},{renewal},company{i}.example,acct-{i},{}\n",
            INDUSTRIES[rng.below(6) as usize],
            10 + rng.below(5000),
            ["EMEA", "AMER", "APAC"][rng.below(3) as usize]
        ));
    }
    out
}

/// The CSV of the demo contacts of `n` accounts.
pub fn contacts_csv(n: usize) -> String {
    let mut rng = Rng::new(2);
    let mut out = String::from("external_id,account_external_id,email,name,role,timezone,product_id\n");
    for i in 0..n {
        for j in 0..contacts_of(i) {
            let tz = ["Europe/London", "America/New_York", "Asia/Tokyo", "Europe/Berlin"][rng.below(4) as usize];
            let role = if j == 0 { "admin" } else { ROLES[rng.below(4) as usize] };
            out.push_str(&format!(
                "C{i:05}-{j},A{i:05},user{j}@company{i}.example,User {j} of {i},{role},{tz},u-{i}-{j}\n"
            ));
        }
    }
    out
}

/// The CSV of the demo subscription lines of `n` accounts: a yearly line per account,
/// renewing within the coming year.
pub fn subscriptions_csv(n: usize, today: jiff::civil::Date) -> String {
    let mut rng = Rng::new(3);
    let mut out = String::from("id,account_id,start_date,end_date,arr,seats,product\n");
    for i in 0..n {
        let end = today.checked_add(SignedDuration::from_hours(24 * rng.below(365) as i64)).unwrap_or(today);
        let start = end.checked_sub(SignedDuration::from_hours(24 * 364)).unwrap_or(end);
        let arr = 2_000 + rng.below(98_000);
        out.push_str(&format!("S{i:05},A{i:05},{start},{end},{arr}.00,{},core\n", 5 + rng.below(100)));
    }
    out
}

/// One demo product event as an NDJSON line (Segment track call), number `k` of the
/// stream, for one of `accounts` accounts, within `days` days before `end`. Its
/// `messageId` is `demo-k`: ids that grow with the stream.
pub fn event_line(rng: &mut Rng, k: u64, accounts: usize, days: i64, end: Timestamp) -> String {
    event_line_with_id(rng, &format!("demo-{k}"), accounts, days, end)
}

/// The same, with a random-looking 128-bit `messageId` derived from `k`, like the UUIDs
/// that Segment's libraries send (the worst case for a unique index).
pub fn event_line_random_id(rng: &mut Rng, k: u64, accounts: usize, days: i64, end: Timestamp) -> String {
    let mut id_rng = Rng::new(k ^ 0x05EE_D1D5);
    let id = format!("{:016x}{:016x}", id_rng.next_u64(), id_rng.next_u64());
    event_line_with_id(rng, &id, accounts, days, end)
}

fn event_line_with_id(rng: &mut Rng, message_id: &str, accounts: usize, days: i64, end: Timestamp) -> String {
    let i = rng.below(accounts as u64) as usize;
    let j = rng.below(contacts_of(i) as u64);
    let r = rng.below(1000);
    // A skewed mix: page views dominate, rare events are rare.
    let e = match r {
        0..=399 => 0,
        400..=599 => 1,
        600..=749 => 2,
        750..=829 => 3,
        830..=879 => 4,
        880..=929 => 5,
        930..=959 => 6,
        960..=979 => 7,
        980..=994 => 8,
        _ => 9,
    };
    let secs_back = rng.below((days * 86_400) as u64) as i64;
    let ts = end.checked_sub(SignedDuration::from_secs(secs_back)).unwrap_or(end);
    format!(
        r#"{{"type":"track","messageId":"{message_id}","userId":"u-{i}-{j}","event":"{}","properties":{{"plan_feature":"f{}","duration_ms":{}}},"context":{{"groupId":"acct-{i}","library":{{"name":"cairn-demo"}}}},"timestamp":"{ts}"}}"#,
        EVENTS[e],
        rng.below(12),
        rng.below(5000),
    )
}

/// The rows of a CSV text of one import kind, parsed by the importer's row parser (the
/// demo generator and the simulation write their CRM files this way).
pub(crate) fn rows<T>(
    csv_text: &str,
    kind: ImportKind,
    parse: impl Fn(&Header, u64, &[&str]) -> Result<T, cairn_core::import::RowError>,
) -> Result<Vec<T>> {
    let mut lines = csv_text.lines();
    let header_fields: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let header = Header::parse(kind, &header_fields)?;
    lines
        .enumerate()
        .map(|(n, l)| {
            let fields: Vec<&str> = l.split(',').collect();
            parse(&header, n as u64 + 2, &fields).map_err(anyhow::Error::from)
        })
        .collect()
}

/// Fills the store with `accounts` demo accounts, their contacts and subscription lines,
/// and 90 days of events (about 40 a contact) ending at `now`. Returns a one-line summary.
pub async fn seed(store: &Store, accounts: usize, now: Timestamp) -> Result<String> {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let a = rows(&accounts_csv(accounts, today), ImportKind::Accounts, parse_account)?;
    let c = rows(&contacts_csv(accounts), ImportKind::Contacts, parse_contact)?;
    let s = rows(&subscriptions_csv(accounts, today), ImportKind::Subscriptions, parse_subscription)?;
    for chunk in a.chunks(1000) {
        store.upsert_accounts(Source::Crm, chunk).await?;
    }
    for chunk in c.chunks(1000) {
        store.upsert_contacts(Source::Crm, chunk).await?;
    }
    for chunk in s.chunks(1000) {
        store.upsert_subscriptions(Source::Crm, chunk).await?;
    }
    let events = c.len() as u64 * 40;
    let envelope = Envelope {
        received_at: now,
        batch_sent_at: None,
        batch_context: None,
        trust_timestamps: true,
        plausible: Default::default(),
    };
    let mut rng = Rng::new(4);
    let mut batch = Vec::with_capacity(10_000);
    for k in 0..events {
        let line = event_line(&mut rng, k, accounts, 90, now);
        batch.push(parse_message(&line, None, &envelope, || format!("demo-{k}"))?);
        if batch.len() == 10_000 {
            store.append("demo", &batch).await?;
            batch.clear();
        }
    }
    store.append("demo", &batch).await?;
    let answers = survey_answers(accounts, now, &envelope)?;
    store.append("demo", &answers).await?;
    Ok(format!(
        "demo data: {} accounts, {} contacts, {} subscription lines, {events} events, {} survey answers",
        a.len(),
        c.len(),
        s.len(),
        answers.len()
    ))
}

/// Survey answers over the last 90 days, logged as cairn logs a followed survey link
/// (`nps_submitted` 0–10, `csat_submitted` 1–5, the score in `score`): about a third of
/// the contacts answered NPS, some twice, a fifth CSAT; scores spread over the scale.
fn survey_answers(accounts: usize, now: Timestamp, envelope: &Envelope) -> Result<Vec<TrackingMessage>> {
    let mut rng = Rng::new(5);
    let mut out = Vec::new();
    for i in 0..accounts {
        for j in 0..contacts_of(i) {
            let times = match rng.below(6) {
                0 | 1 => 1,
                2 => 2,
                _ => 0,
            };
            let mut answer = |event: &str, score: u64, rng: &mut Rng| -> Result<()> {
                let back = SignedDuration::from_secs(rng.below(90 * 86_400) as i64);
                let ts = now.checked_sub(back).unwrap_or(now);
                let id = format!("demo-{event}-{i}-{j}-{}", out.len());
                let line = format!(
                    r#"{{"type":"track","messageId":"{id}","userId":"u-{i}-{j}","event":"{event}","properties":{{"survey":"{}","score":{score}}},"timestamp":"{ts}"}}"#,
                    event.trim_end_matches("_submitted")
                );
                out.push(parse_message(&line, None, envelope, || id.clone())?);
                Ok(())
            };
            for _ in 0..times {
                // 0–10, leaning to 7–10.
                let score = (4 + rng.below(7) + rng.below(4)).min(10) - rng.below(2) * rng.below(5);
                answer("nps_submitted", score, &mut rng)?;
            }
            if rng.below(5) == 0 {
                let score = (2 + rng.below(3) + rng.below(2)).min(5);
                answer("csat_submitted", score, &mut rng)?;
            }
        }
    }
    Ok(out)
}

/// The example workspace shipped in `examples/workspace`, built in: what `cairn serve
/// --demo` evaluates when no folder is given. Returns the checked definitions and their
/// content hash.
pub fn example_workspace() -> Result<(cairn_workspace::Workspace, String)> {
    let files = [
        ("workspace.yaml", include_str!("../../../examples/workspace/workspace.yaml")),
        ("segments.yaml", include_str!("../../../examples/workspace/segments.yaml")),
        ("journey.yaml", include_str!("../../../examples/workspace/journey.yaml")),
        ("health.yaml", include_str!("../../../examples/workspace/health.yaml")),
        ("insights.yaml", include_str!("../../../examples/workspace/insights.yaml")),
        ("programs.yaml", include_str!("../../../examples/workspace/programs.yaml")),
        ("templates.yaml", include_str!("../../../examples/workspace/templates.yaml")),
        ("staffing.yaml", include_str!("../../../examples/workspace/staffing.yaml")),
        ("templates/business_review.html", include_str!("../../../examples/workspace/templates/business_review.html")),
        ("templates/invite_team.html", include_str!("../../../examples/workspace/templates/invite_team.html")),
        (
            "templates/launch_introduction.html",
            include_str!("../../../examples/workspace/templates/launch_introduction.html"),
        ),
        (
            "templates/launch_thank_you.html",
            include_str!("../../../examples/workspace/templates/launch_thank_you.html"),
        ),
        ("templates/nps.html", include_str!("../../../examples/workspace/templates/nps.html")),
        ("templates/renewal_recap.html", include_str!("../../../examples/workspace/templates/renewal_recap.html")),
        ("templates/welcome.html", include_str!("../../../examples/workspace/templates/welcome.html")),
        ("templates/welcome.txt", include_str!("../../../examples/workspace/templates/welcome.txt")),
    ]
    .map(|(name, text)| cairn_workspace::SourceFile::new(name, text));
    let ws = cairn_workspace::check_sources(&files).map_err(|diags| {
        let list: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        anyhow::anyhow!("the built-in example workspace has problems:\n{}", list.join("\n"))
    })?;
    Ok((ws, cairn_runtime::definitions_hash(&files)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_example_workspace_is_the_examples_folder_and_passes_its_checks() {
        let (ws, _) = example_workspace().unwrap_or_else(|e| panic!("{e:#}"));
        let folder = cairn_workspace::load_dir(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/workspace"
        )))
        .unwrap_or_else(|d| panic!("{d:?}"));
        assert_eq!(ws.summary(), folder.summary(), "a file of examples/workspace is missing from example_workspace()");
        assert!(ws.summary().programs >= 5);
    }

    #[test]
    fn each_demo_account_renews_when_its_subscription_line_ends() {
        let today = jiff::civil::Date::constant(2026, 3, 1);
        let accounts = accounts_csv(50, today);
        let lines = subscriptions_csv(50, today);
        for (a, s) in accounts.lines().skip(1).zip(lines.lines().skip(1)) {
            let renewal = a.split(',').nth(7).unwrap();
            let end = s.split(',').nth(3).unwrap();
            assert_eq!(renewal, end, "{a} / {s}");
        }
    }
}
