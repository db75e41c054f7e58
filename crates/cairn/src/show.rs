//! `cairn show account` and `cairn segments`: the engine's view of the data, evaluated
//! from the store as of now without writing anything.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use cairn_core::Clock;
use cairn_runtime::views::{self, AccountView};
use cairn_runtime::{Live, Runtime};

use crate::cli::open_store;

/// Loads the workspace, or fails listing every problem.
pub fn load_workspace(dir: &Path) -> Result<(cairn_workspace::Workspace, String)> {
    cairn_server::load_workspace(dir).map_err(|diags| {
        let list: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        anyhow!(
            "the workspace {} has problems (run `cairn check {}`):\n{}",
            dir.display(),
            dir.display(),
            list.join("\n")
        )
    })
}

async fn evaluate(db: &str, dir: &Path, clock: &dyn Clock) -> Result<(cairn_store::Store, Live)> {
    let (ws, _) = load_workspace(dir)?;
    let store = open_store(db).await?;
    let live = Runtime::evaluate(&store, clock, Arc::new(ws)).await?;
    Ok((store, live))
}

/// `cairn show account ID`.
pub async fn account(id: &str, db: &str, dir: &Path, json: bool, clock: &dyn Clock) -> Result<ExitCode> {
    let (store, live) = evaluate(db, dir, clock).await?;
    let Some(n) = store.resolve_account(id).await? else {
        eprintln!("error: no account `{id}`: give its cairn id, CRM id or product id");
        return Ok(ExitCode::from(1));
    };
    let Some(view) = views::account(&live.engine, n as u64) else {
        eprintln!("error: account `{id}` has no state yet");
        return Ok(ExitCode::from(1));
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render_account(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// `cairn segments`.
pub async fn segments(db: &str, dir: &Path, json: bool, clock: &dyn Clock) -> Result<ExitCode> {
    let (_, live) = evaluate(db, dir, clock).await?;
    let list = views::segments(&live.engine);
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let _ = writeln!(out, "{:<28} {:<8} {:>8}  rule", "segment", "of", "members");
    for s in &list {
        let _ = writeln!(out, "{:<28} {:<8} {:>8}  {}", s.id, s.of, s.members, s.rule);
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn score(x: Option<f64>) -> String {
    x.map_or_else(|| "no data".to_string(), |s| format!("{s:.0}"))
}

/// The account 360 for a terminal.
pub fn render_account(v: &AccountView) -> String {
    let mut out = String::new();
    let name = v.traits.get("name").and_then(|n| n.as_str()).unwrap_or("(no name)");
    let _ = writeln!(out, "{name} (account {})", v.id);
    for (k, val) in &v.traits {
        if k != "name" {
            let _ = writeln!(out, "  {k:<16} {val}");
        }
    }
    let _ = writeln!(out, "\nstage: {}", v.stage.as_deref().unwrap_or("(none)"));
    if let Some(since) = v.stage_since {
        let _ = writeln!(out, "  since {since}");
    }
    let _ = writeln!(out, "segments: {}", if v.segments.is_empty() { "(none)".into() } else { v.segments.join(", ") });
    if !v.milestones.is_empty() {
        let _ = writeln!(out, "\nmilestones:");
        for m in &v.milestones {
            let at = m.at.map(|t| t.to_string()).unwrap_or_default();
            let value = if m.value { "  (value)" } else { "" };
            let _ = writeln!(out, "  {:<24} {:<14} {:<9} {at}{value}", m.id, m.stage, m.status);
        }
        if let Some(ttv) = v.time_to_value_days {
            let _ = writeln!(out, "  time to value: {ttv:.1} days");
        }
    }
    if let Some(h) = &v.health {
        let band = h.score.band.map(|b| format!("{b:?}").to_lowercase()).unwrap_or_default();
        let trend = |t: Option<f64>| t.map_or_else(|| "n/a".to_string(), |x| format!("{x:+.0}"));
        let _ = writeln!(
            out,
            "\nhealth: {} {band} (model {}; 7d {}, 30d {})",
            score(h.score.score),
            h.score.model,
            trend(h.trend_7d),
            trend(h.trend_30d)
        );
        if let Some(o) = &v.health_override {
            let _ = writeln!(out, "  overridden to {:.0} by {} until {}: {}", o.score, o.by, o.expires_at, o.reason);
        }
        for p in &h.score.pillars {
            let _ = writeln!(out, "  {:<20} {:>8}  weight {}", p.id, score(p.score), p.weight);
            for m in &p.measures {
                let value = m.value.map_or_else(|| "no data".to_string(), |x| format!("{x:.2}"));
                let _ = writeln!(
                    out,
                    "    {:<22} value {:>10}  score {:>8}  share {:>5.1}%  +{:.1}",
                    m.id,
                    value,
                    score(m.score),
                    m.share * 100.0,
                    m.contribution
                );
            }
        }
        if let Some((p, m)) = &h.score.dragging {
            let _ = writeln!(out, "  dragging it down most: {p} / {m}");
        }
    }
    let _ = writeln!(out, "\ncontacts: {}", v.contacts.len());
    for c in v.contacts.iter().take(20) {
        let email = c.traits.get("email").and_then(|e| e.as_str()).unwrap_or("");
        let _ = writeln!(out, "  {:<8} {email:<32} {}", c.id, c.segments.join(", "));
    }
    out
}
