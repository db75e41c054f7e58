//! `cairn program preview`: a program's dry run as of an instant (audience, holdout,
//! segments, three rendered first messages), evaluated from the store without writing;
//! with `--from`/`--to`, its dry run over that period of history
//! (`cairn_programs::dry_run`: the log replayed in a scratch database).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use cairn_channels::LinkSigner;
use cairn_core::{Clock, FixedClock};
use cairn_programs::{DryRun, DryRunError, Preview};
use cairn_runtime::Runtime;

use crate::cli::open_store;
use crate::show::load_workspace;

/// `cairn program preview ID`.
pub async fn preview(
    id: &str,
    db: &str,
    dir: &Path,
    as_of: Option<&str>,
    json: bool,
    clock: &dyn Clock,
) -> Result<ExitCode> {
    let (ws, _) = load_workspace(dir)?;
    let Some(program) = ws.programs().iter().find(|p| p.id.as_str() == id).cloned() else {
        let ids: Vec<&str> = ws.programs().iter().map(|p| p.id.as_str()).collect();
        let hint = cairn_core::suggest::closest(id, ids.iter().copied())
            .map(|near| format!(", did you mean `{near}`?"))
            .unwrap_or_else(|| format!("; the workspace has: {}", ids.join(", ")));
        eprintln!("error: no program `{id}`{hint}");
        return Ok(ExitCode::from(1));
    };
    let at = match as_of {
        Some(text) => {
            cairn_programs::parse_plausible_as_of(text, ws.time_zone(), clock.now()).map_err(|e| anyhow!("--{e}"))?
        }
        None => clock.now(),
    };
    let store = open_store(db).await?;
    let live = Runtime::evaluate(&store, &FixedClock::new(at), Arc::new(ws)).await?;
    let public_url = std::env::var("CAIRN_PUBLIC_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_string());
    let preview =
        cairn_programs::preview(&live.engine, &program, &LinkSigner::new(cairn_programs::PREVIEW_SECRET), &public_url)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&preview)?);
    } else {
        print!("{}", render(&preview));
    }
    Ok(ExitCode::SUCCESS)
}

/// The preview for a terminal.
pub fn render(p: &Preview) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "program {} ({}), of {}s, trigger {}",
        p.program,
        p.name.as_deref().unwrap_or("unnamed"),
        p.subject,
        p.trigger
    );
    let _ = writeln!(out, "as of {}: {}", p.as_of, p.basis);
    let _ = writeln!(out, "audience {}: {} would be sent to, {} held out", p.audience, p.treated, p.holdout);
    if !p.by_segment.is_empty() {
        let _ = writeln!(out, "\nby segment:");
        for s in &p.by_segment {
            let _ = writeln!(out, "  {:<28} {:>8}", s.segment, s.count);
        }
    }
    for (i, s) in p.samples.iter().enumerate() {
        let to = s.to.as_deref().unwrap_or("(no address)");
        let _ = writeln!(out, "\nsample {} — to {to}, step {}, template {}", i + 1, s.step, s.template);
        match &s.error {
            Some(e) => {
                let _ = writeln!(out, "  cannot be rendered: {e}");
            }
            None => {
                let _ = writeln!(out, "  subject: {}", s.subject_line);
                let body = if s.text.is_empty() { cairn_programs::html_to_text(&s.html) } else { s.text.clone() };
                for line in body.lines().take(12) {
                    let _ = writeln!(out, "  | {line}");
                }
            }
        }
    }
    if p.samples.is_empty() {
        let _ = writeln!(out, "\nno sample: nobody would be sent to, or the program sends nothing");
    }
    out
}

/// `cairn program preview ID --from DATE --to DATE`.
pub async fn dry_run(
    id: &str,
    db: &str,
    dir: &Path,
    (from, to): (&str, &str),
    json: bool,
    clock: &dyn Clock,
) -> Result<ExitCode> {
    let (ws, _) = load_workspace(dir)?;
    let period = cairn_programs::dry_run::parse_period(from, to, ws.time_zone())
        .and_then(|(f, t)| cairn_programs::dry_run::check_period(f, t, clock.now()));
    let (from, to) = match period {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = open_store(db).await?;
    let options = cairn_programs::DryRunOptions {
        from,
        to,
        now: clock.now(),
        pass_every: cairn_programs::dry_run::DEFAULT_PASS_EVERY,
        public_url: std::env::var("CAIRN_PUBLIC_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_string()),
    };
    let report = match cairn_programs::dry_run(&store, Arc::new(ws), id, &options).await {
        Ok(r) => r,
        Err(e @ (DryRunError::UnknownProgram { .. } | DryRunError::BadPeriod(_))) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(if matches!(e, DryRunError::UnknownProgram { .. }) { 1 } else { 2 }));
        }
        Err(e) => return Err(anyhow!(e).context("the dry run failed")),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_dry_run(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// A dry run over history for a terminal: the load, the steps, the samples, the notes.
pub fn render_dry_run(r: &DryRun) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dry run of program {} ({}) from {} to {}: {} passes, nothing sent, nothing stored",
        r.program,
        r.name.as_deref().unwrap_or("unnamed"),
        r.from,
        r.to,
        r.passes
    );
    let _ = writeln!(out, "enrolled {} ({} held out)", r.enrolled, r.held_out);
    let _ = writeln!(out, "sent {} messages, created {} tasks", r.sent, r.tasks_created);
    let _ = writeln!(
        out,
        "guard rails: quiet hours held a send {} times, frequency caps held {} and dropped {}",
        r.quiet_hours_deferrals, r.cap_deferrals, r.cap_skips
    );
    if !r.steps.is_empty() {
        let _ = writeln!(out, "\n{:<22} {:<8} {:<22} outcomes", "step", "channel", "variant");
        for s in &r.steps {
            let outcomes: Vec<String> = s.outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
            let _ = writeln!(
                out,
                "{:<22} {:<8} {:<22} {}",
                s.step,
                s.channel,
                s.variant.as_deref().unwrap_or("-"),
                outcomes.join(", ")
            );
        }
    }
    for (i, s) in r.samples.iter().enumerate() {
        let _ = writeln!(out, "\nsample {} — {} to {}, step {}, at {}", i + 1, s.channel, s.to, s.step, s.at);
        let _ = writeln!(out, "  subject: {}", s.subject);
        for line in s.excerpt.lines().filter(|l| !l.trim().is_empty()).take(8) {
            let _ = writeln!(out, "  | {line}");
        }
    }
    if r.samples.is_empty() {
        let _ = writeln!(out, "\nno sample: nothing would have been sent in the period");
    }
    let _ = writeln!(out);
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
