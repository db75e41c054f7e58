//! `cairn report staffing`: the CSMs the touch model needs for the accounts as they are
//! now (segments and stages from the engine evaluated over the store), and with
//! `--digital` the what-if of moving stages to digital, before and after.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Result;
use cairn_core::Clock;
use cairn_measure::Ratio;
use cairn_measure::staffing::{Change, Figures, Staffing};
use cairn_reports::staffing::StaffingReport;
use cairn_runtime::Runtime;
use clap::Args;

use super::format::{decimal, money, plural};
use crate::cli::{DbArg, WorkspaceArg, open_store};

/// What `cairn report staffing` takes.
#[derive(Args, Debug)]
pub struct StaffingArgs {
    #[command(flatten)]
    ws: WorkspaceArg,
    /// What if these stages of a segment went digital: SEGMENT:STAGE[,STAGE…]
    /// (repeatable); each keeps its `digital_hours`, 0 unless the touch model says
    #[arg(long, value_name = "SEGMENT:STAGES")]
    digital: Vec<String>,
    /// Print JSON: every figure as its exact numerator and denominator, and its value
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV: one row per segment and stage, a total row per segment and overall
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    db: DbArg,
}

/// Evaluates the workspace over the store as of now and prints the staffing report.
pub async fn run(args: StaffingArgs, clock: &dyn Clock) -> Result<String> {
    let (ws, _) = crate::show::load_workspace(&args.ws.workspace)?;
    let store = open_store(&args.db.db).await?;
    let live = Runtime::evaluate(&store, clock, Arc::new(ws)).await;
    store.close().await;
    let report = cairn_reports::staffing::staffing(&live?.engine, &args.digital)?;
    Ok(if args.json {
        super::json(&report)?
    } else if args.csv {
        csv(&report)
    } else {
        table(&report)
    })
}

/// `r` with `places` decimals, rounded half away from zero in integers.
fn fixed(r: Ratio, places: u32) -> String {
    let scale = 10i128.pow(places);
    let (n, d) = (r.numerator().saturating_mul(scale), r.denominator());
    let q = (n.unsigned_abs().saturating_mul(2).saturating_add(d.unsigned_abs())) / d.unsigned_abs().saturating_mul(2);
    let sign = if n < 0 && q > 0 { "-" } else { "" };
    let (whole, frac) = (q / scale.unsigned_abs(), q % scale.unsigned_abs());
    if places == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac:0width$}", width = places as usize)
    }
}

/// Cents as a ratio, rounded to the cent.
fn cents(r: Ratio) -> i64 {
    let (n, d) = (r.numerator(), r.denominator());
    let q = (n.unsigned_abs().saturating_mul(2).saturating_add(d.unsigned_abs())) / d.unsigned_abs().saturating_mul(2);
    let q = i64::try_from(q).unwrap_or(i64::MAX);
    if n < 0 { -q } else { q }
}

fn or_na(r: Option<Ratio>, f: impl Fn(Ratio) -> String) -> String {
    r.map_or_else(|| "n/a".to_string(), f)
}

const HEADER: [&str; 10] =
    ["segment", "stage", "accounts", "ARR", "h/account", "hours", "CSMs", "cost", "cost/ARR $", "ARR per CSM"];

fn row(segment: &str, stage: &str, per_account: Option<Ratio>, f: &Figures) -> [String; 10] {
    [
        segment.to_string(),
        stage.to_string(),
        f.accounts.to_string(),
        money(f.arr_cents),
        per_account.map_or_else(String::new, |h| fixed(h, 1)),
        fixed(f.hours, 1),
        fixed(f.csms, 2),
        money(f.cost_cents),
        or_na(f.cost_per_arr_dollar, |r| fixed(r, 3)),
        or_na(f.arr_per_csm, |r| money(cents(r))),
    ]
}

/// The table and its summary; `outside` adds the line about accounts the model misses.
fn staffing_table(s: &Staffing, outside: bool) -> String {
    let mut rows = vec![HEADER.map(str::to_string)];
    for seg in &s.segments {
        for r in &seg.stages {
            let stage = match (&r.stage, r.digital) {
                (Some(st), true) => format!("{st} (digital)"),
                (Some(st), false) => st.clone(),
                (None, _) => "(no stage)".to_string(),
            };
            rows.push(row(&seg.segment, &stage, Some(r.hours_per_account), &r.figures));
        }
        rows.push(row(&seg.segment, "total", None, &seg.total));
    }
    rows.push(row("total", "", None, &s.total));
    let widths: Vec<usize> =
        (0..HEADER.len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (n, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            let w = widths[i];
            let _ = if i < 2 { write!(line, "{cell:<w$}  ") } else { write!(line, "{cell:>w$}  ") };
        }
        let _ = writeln!(out, "{}", line.trim_end());
        // A blank line before each segment's first row and before the grand total.
        let next_starts_segment = rows.get(n + 1).is_some_and(|next| n == 0 || next[0] != r[0]);
        if next_starts_segment {
            let _ = writeln!(out);
        }
    }
    let t = &s.total;
    let _ = writeln!(
        out,
        "\n{} CSMs needed, {} to hire: {} a year ({} for the hours alone), {} per ARR dollar.",
        fixed(t.csms, 2),
        t.whole_csms,
        money(t.whole_csms_cost_cents),
        money(t.cost_cents),
        or_na(t.cost_per_arr_dollar, |r| fixed(r, 3)),
    );
    if outside && s.outside.accounts > 0 {
        let _ = writeln!(
            out,
            "{} with {} ARR in no touch-model segment: not counted above (add their segment to `touch_model`).",
            plural(s.outside.accounts, "account", "accounts"),
            money(s.outside.arr_cents),
        );
    }
    out
}

fn table(r: &StaffingReport) -> String {
    let s = &r.staffing;
    let mut out = String::new();
    let _ = writeln!(out, "Staffing model, accounts as of {}", r.as_of.strftime("%Y-%m-%d %H:%M UTC"));
    let hourly = Ratio::new(s.csm_cost_per_year_cents, i64::from(s.csm_hours_per_year)).map_or(0, cents);
    let _ = writeln!(
        out,
        "One CSM: {} hours a year, {} a year ({} an hour)\n",
        s.csm_hours_per_year,
        money(s.csm_cost_per_year_cents),
        money(hourly)
    );
    out.push_str(&staffing_table(s, true));
    let Some(w) = &r.what_if else { return out };
    let mut moved: Vec<String> = Vec::new();
    for (segment, stage) in &w.digital {
        match moved.last_mut() {
            Some(last) if last.starts_with(&format!("{segment}:")) => last.push_str(&format!(",{stage}")),
            _ => moved.push(format!("{segment}:{stage}")),
        }
    }
    let _ = writeln!(out, "\nWhat if digital: {}\n", moved.join(", "));
    out.push_str(&staffing_table(&w.after, false));
    let (b, a, c) = (&s.total, &w.after.total, &w.change);
    let lines: [(&str, String, String, String); 6] = [
        ("hours", fixed(b.hours, 1), fixed(a.hours, 1), signed(fixed(c.hours, 1))),
        ("CSMs needed", fixed(b.csms, 2), fixed(a.csms, 2), signed(fixed(c.csms, 2))),
        ("CSMs to hire", b.whole_csms.to_string(), a.whole_csms.to_string(), signed(c.whole_csms.to_string())),
        ("cost of the hours", money(b.cost_cents), money(a.cost_cents), signed(money(c.cost_cents))),
        (
            "cost of the CSMs",
            money(b.whole_csms_cost_cents),
            money(a.whole_csms_cost_cents),
            signed(money(c.whole_csms_cost_cents)),
        ),
        (
            "cost per ARR $",
            or_na(b.cost_per_arr_dollar, |r| fixed(r, 3)),
            or_na(a.cost_per_arr_dollar, |r| fixed(r, 3)),
            or_na(c.cost_per_arr_dollar, |r| signed(fixed(r, 3))),
        ),
    ];
    let _ = writeln!(out, "\n{:<20} {:>16} {:>16} {:>16}", "", "before", "after", "change");
    for (label, before, after, change) in lines {
        let _ = writeln!(out, "{label:<20} {before:>16} {after:>16} {change:>16}");
    }
    let by_segment: Vec<String> = w
        .segments
        .iter()
        .filter(|(_, c)| c.hours.numerator() != 0)
        .map(|(segment, c): &(String, Change)| {
            format!("{segment} {} CSMs ({})", signed(fixed(c.csms, 2)), signed(money(c.cost_cents)))
        })
        .collect();
    if !by_segment.is_empty() {
        let _ = writeln!(out, "\nBy segment: {}.", by_segment.join("; "));
    }
    out
}

/// `+1.5` for a change that is not negative.
fn signed(text: String) -> String {
    if text.starts_with('-') || text.chars().all(|c| c == '0' || c == '.' || c == ',') {
        text
    } else {
        format!("+{text}")
    }
}

fn csv(r: &StaffingReport) -> String {
    let mut out = String::from(
        "scenario,segment,stage,digital,accounts,arr,hours_per_account,hours,csms,whole_csms,cost,whole_csms_cost,cost_per_arr_dollar,arr_per_csm\n",
    );
    let value = |r: Option<Ratio>| r.map_or_else(String::new, |r| r.to_f64().to_string());
    let mut rows = |scenario: &str, s: &Staffing| {
        let mut line = |segment: &str, stage: &str, digital: bool, per_account: Option<Ratio>, f: &Figures| {
            let _ = writeln!(
                out,
                "{scenario},{segment},{stage},{digital},{},{},{},{},{},{},{},{},{},{}",
                f.accounts,
                decimal(f.arr_cents),
                value(per_account),
                f.hours.to_f64(),
                f.csms.to_f64(),
                f.whole_csms,
                decimal(f.cost_cents),
                decimal(f.whole_csms_cost_cents),
                value(f.cost_per_arr_dollar),
                f.arr_per_csm.map_or_else(String::new, |r| decimal(cents(r))),
            );
        };
        for seg in &s.segments {
            for row in &seg.stages {
                let stage = row.stage.as_deref().unwrap_or("");
                line(&seg.segment, stage, row.digital, Some(row.hours_per_account), &row.figures);
            }
            line(&seg.segment, "total", false, None, &seg.total);
        }
        line("total", "", false, None, &s.total);
    };
    rows("as_is", &r.staffing);
    if let Some(w) = &r.what_if {
        rows("what_if", &w.after);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_decimals_round_half_away_from_zero() {
        let r = |n: i64, d: i64| Ratio::new(n, d).expect("ratio");
        assert_eq!(fixed(r(1, 8), 2), "0.13");
        assert_eq!(fixed(r(-1, 8), 2), "-0.13");
        assert_eq!(fixed(r(164, 100), 2), "1.64");
        assert_eq!(fixed(r(7, 2), 0), "4");
        assert_eq!(fixed(r(1, 1000), 1), "0.0");
        assert_eq!(cents(r(-3, 2)), -2);
        assert_eq!(signed("1.50".into()), "+1.50");
        assert_eq!(signed("0.00".into()), "0.00");
    }
}
