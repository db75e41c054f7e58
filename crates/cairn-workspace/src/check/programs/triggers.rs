//! A program's trigger: a transition (`segment_entered('id')`), an event, a schedule (cron)
//! or a date trait with an offset (`renewal_date - 90d`).

use cairn_rules::{Span, Subject, TriggerToken as Token, Type, lex_trigger};

use super::*;
use crate::check::suggestion;
use crate::check::{At, Checker, RuleSource, list, parse_duration};
use crate::model::{Band, Id};
use crate::programs::{DateTrigger, Schedule, Transition, Trigger};
use crate::suggest::did_you_mean;
use crate::yaml::{self, Node, Value};

const BANDS: &[&str] = &["red", "yellow", "green"];
const TRIGGERS: &[&str] = &[
    "segment_entered",
    "segment_exited",
    "milestone_achieved",
    "milestone_missed",
    "stage_entered",
    "health_band_changed",
    "event",
    "schedule",
];

/// An argument of a trigger call: its name and where it is, if named (`to: 'red'`), its
/// value, and where the value is.
type TriggerArg = (Option<(String, usize)>, String, usize);

impl Transition {
    fn from_segment(entered: bool, id: Id) -> Transition {
        if entered { Transition::SegmentEntered(id) } else { Transition::SegmentExited(id) }
    }
}

fn band(name: &str) -> Option<Band> {
    Some(match name {
        "red" => Band::Red,
        "yellow" => Band::Yellow,
        "green" => Band::Green,
        _ => return None,
    })
}

/// croner's message, without its type prefix and trailing full stop.
fn cron_message(e: &croner::errors::CronError) -> String {
    let text = e.to_string();
    let text = text
        .strip_prefix("Invalid pattern: ")
        .or_else(|| text.strip_prefix("Component error: "))
        .or_else(|| text.strip_prefix("Pattern contains illegal characters: "))
        .unwrap_or(&text);
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Checker<'_> {
    pub(super) fn trigger(&mut self, file: usize, node: &Node, subject: Subject, known: &Known<'_>) -> Option<Trigger> {
        let at = At { file, offset: node.offset };
        let Value::Str(text) = &node.value else {
            let help = Some("e.g. `trigger: segment_entered('at_risk')`, `trigger: renewal_date - 90d`".into());
            self.error(at, format!("expected a trigger for `trigger`, found {}", node.value.kind()), help);
            return None;
        };
        let source = RuleSource { text: text.clone(), at };
        let tokens = lex_trigger(text);
        let here = |cx: &Self, byte: usize| cx.at_in(&source, byte);
        let Some((first, first_span)) = tokens.first().cloned() else {
            self.error(at, "`trigger` is empty", Some("e.g. `trigger: segment_entered('at_risk')`".into()));
            return None;
        };
        let Token::Ident(name) = first else {
            let help = Some("a trigger is a transition (`segment_entered('id')`), `event('name')`, `schedule('cron')` or a date trait (`renewal_date - 90d`)".into());
            self.error(here(self, first_span.start), format!("cannot read `{text}` as a trigger"), help);
            return None;
        };
        if tokens.get(1).map(|t| &t.0) != Some(&Token::Punct('(')) {
            return self.date_trigger(&source, &tokens, subject, known);
        }
        // name ( args )
        let mut args: Vec<TriggerArg> = Vec::new();
        let mut i = 2;
        let mut close = None;
        while let Some(token) = tokens.get(i) {
            match token {
                (Token::Punct(')'), span) => {
                    close = Some(span.start);
                    i += 1;
                    break;
                }
                (Token::Punct(','), _) if !args.is_empty() => i += 1,
                (Token::Ident(key), kspan) if tokens.get(i + 1).map(|t| &t.0) == Some(&Token::Punct(':')) => {
                    match tokens.get(i + 2) {
                        Some((Token::Str(v), vspan)) => {
                            args.push((Some((key.clone(), kspan.start)), v.clone(), vspan.start));
                            i += 3;
                        }
                        _ => {
                            let help = Some(format!("write the value in quotes, e.g. `{key}: 'red'`"));
                            self.error(here(self, kspan.start), format!("`{key}:` needs a value in quotes"), help);
                            return None;
                        }
                    }
                }
                (Token::Str(v), span) => {
                    args.push((None, v.clone(), span.start));
                    i += 1;
                }
                (token, span) => {
                    let shown = match token {
                        Token::Ident(s) | Token::Duration(s) => s.clone(),
                        Token::Str(s) => format!("'{s}'"),
                        Token::Punct(c) | Token::Bad(c) => c.to_string(),
                    };
                    let help = Some(format!("ids and names go in single quotes, e.g. `{name}('some_id')`"));
                    self.error(here(self, span.start), format!("unexpected `{shown}` in the trigger"), help);
                    return None;
                }
            }
        }
        if close.is_none() {
            self.error(here(self, text.len()), "this `(` is never closed", Some("add a `)` to close it".into()));
            return None;
        }
        if let Some((_, span)) = tokens.get(i) {
            self.error(
                here(self, span.start),
                "unexpected text after the trigger",
                Some("a program has one trigger".into()),
            );
            return None;
        }
        let at_name = here(self, first_span.start);
        let positional = |cx: &mut Self, what: &str, example: &str| -> Option<(String, usize)> {
            match args.as_slice() {
                [(None, v, off)] => Some((v.clone(), *off)),
                _ => {
                    let help = Some(format!("usage: `{name}('{example}')`"));
                    cx.error(at_name, format!("`{name}` takes one {what} in quotes"), help);
                    None
                }
            }
        };
        let trigger = match name.as_str() {
            "segment_entered" | "segment_exited" => {
                let (id, off) = positional(self, "segment id", "at_risk")?;
                let id_at = here(self, off);
                match known.segments.get(&id) {
                    None => {
                        self.unknown(id_at, "segment", &id, known.segments.keys().map(String::as_str), "segments");
                        return None;
                    }
                    Some(Subject::Contact) if subject == Subject::Account => {
                        let help = Some("a program of accounts starts on segments of accounts".into());
                        self.error(id_at, format!("`{id}` is a segment of contacts"), help);
                        return None;
                    }
                    Some(_) => {}
                }
                let id = Id::parse(&id).ok()?;
                Transition::from_segment(name == "segment_entered", id)
            }
            "milestone_achieved" | "milestone_missed" => {
                let (id, off) = positional(self, "milestone id", "invited_team")?;
                if !known.milestones.contains(&id) {
                    self.unknown(
                        here(self, off),
                        "milestone",
                        &id,
                        known.milestones.iter().map(String::as_str),
                        "milestones",
                    );
                    return None;
                }
                let id = Id::parse(&id).ok()?;
                if name == "milestone_missed" {
                    Transition::MilestoneMissed(id)
                } else {
                    Transition::MilestoneAchieved(id)
                }
            }
            "stage_entered" => {
                let (id, off) = positional(self, "stage id", "renewal")?;
                if !known.stages.contains(&id) {
                    self.unknown(here(self, off), "stage", &id, known.stages.iter().map(String::as_str), "stages");
                    return None;
                }
                Transition::StageEntered(Id::parse(&id).ok()?)
            }
            "health_band_changed" => {
                let mut from = None;
                let mut to = None;
                let mut ok = true;
                for (key, value, off) in &args {
                    let (key, key_off) = match key {
                        Some((key, key_off)) => (key.as_str(), *key_off),
                        // `health_band_changed('red')`: the band entered.
                        None if args.len() == 1 => ("to", *off),
                        None => {
                            let help = Some("name the bands: `health_band_changed(from: 'green', to: 'red')`".into());
                            self.error(here(self, *off), "`health_band_changed` takes `from:` and `to:`", help);
                            ok = false;
                            continue;
                        }
                    };
                    let slot = match key {
                        "from" => &mut from,
                        "to" => &mut to,
                        _ => {
                            let help =
                                suggestion(key, &["from", "to"]).or_else(|| Some("it takes `from:` and `to:`".into()));
                            self.error(
                                here(self, key_off),
                                format!("unknown argument `{key}` of `health_band_changed`"),
                                help,
                            );
                            ok = false;
                            continue;
                        }
                    };
                    match band(value) {
                        Some(b) => *slot = Some(b),
                        None => {
                            let help =
                                suggestion(value, BANDS).or_else(|| Some(format!("the bands are {}", list(BANDS))));
                            self.error(here(self, *off), format!("unknown health band `{value}`"), help);
                            ok = false;
                        }
                    }
                }
                if !ok {
                    return None;
                }
                if from.is_some() && from == to {
                    self.error(at_name, "`from` and `to` are the same band: the band would not change", None);
                    return None;
                }
                Transition::HealthBandChanged { from, to }
            }
            "event" => {
                let (event, off) = positional(self, "event name", "report_created")?;
                if event.trim().is_empty() {
                    self.error(here(self, off), "the event name is empty", None);
                    return None;
                }
                return Some(Trigger::Event(event));
            }
            "schedule" => {
                let (pattern, off) = positional(self, "cron pattern", "0 9 * * MON")?;
                let parser = croner::parser::CronParser::builder().seconds(croner::parser::Seconds::Disallowed).build();
                return match parser.parse(&pattern) {
                    Ok(cron) => Some(Trigger::Schedule(Box::new(Schedule { pattern, cron }))),
                    Err(e) => {
                        let help = Some(
                            "a cron pattern has five fields — minute hour day-of-month month day-of-week — in the workspace time zone, e.g. `0 9 * * MON`"
                                .into(),
                        );
                        self.error(
                            here(self, off),
                            format!("invalid schedule `{pattern}`: {}", cron_message(&e)),
                            help,
                        );
                        None
                    }
                };
            }
            _ => {
                let help = suggestion(&name, TRIGGERS).or_else(|| {
                    Some(format!("the triggers are {}, or a date trait such as `renewal_date - 90d`", list(TRIGGERS)))
                });
                self.error(at_name, format!("unknown trigger `{name}`"), help);
                return None;
            }
        };
        Some(Trigger::Transition(trigger))
    }

    /// `renewal_date - 90d`, `account.renewal_date`, `contact.birthday + 1d`.
    fn date_trigger(
        &mut self,
        source: &RuleSource,
        tokens: &[(Token, Span)],
        subject: Subject,
        known: &Known<'_>,
    ) -> Option<Trigger> {
        let Some((Token::Ident(name), name_span)) = tokens.first() else { return None };
        let at = self.at_in(source, name_span.start);
        let (owner, bare) = match name.split_once('.') {
            Some(("account", rest)) => (Some(Subject::Account), rest),
            Some(("contact", rest)) => (Some(Subject::Contact), rest),
            Some(_) => {
                let help = Some("qualify a trait with `account.` or `contact.`".into());
                self.error(at, format!("cannot read `{name}` as a trait"), help);
                return None;
            }
            None => (None, name.as_str()),
        };
        let contact_ok = subject == Subject::Contact && owner != Some(Subject::Account);
        let found = match owner {
            Some(Subject::Contact) if subject == Subject::Account => {
                let help = Some("a program of accounts has no single contact".into());
                self.error(at, format!("`{name}` cannot be used in a program of accounts"), help);
                return None;
            }
            _ => contact_ok.then(|| known.contact_traits.get(bare).map(|t| (Subject::Contact, t))).flatten().or_else(
                || {
                    (owner != Some(Subject::Contact))
                        .then(|| known.account_traits.get(bare).map(|t| (Subject::Account, t)))
                        .flatten()
                },
            ),
        };
        let (trait_owner, ty) = match found {
            Some((o, ty)) => (o, ty.clone()),
            None => {
                let mut dates: Vec<&str> = known
                    .account_traits
                    .iter()
                    .filter(|(_, t)| matches!(t, Type::Date | Type::Timestamp))
                    .map(|(n, _)| n.as_str())
                    .collect();
                if subject == Subject::Contact {
                    dates.extend(
                        known
                            .contact_traits
                            .iter()
                            .filter(|(_, t)| matches!(t, Type::Date | Type::Timestamp))
                            .map(|(n, _)| n.as_str()),
                    );
                }
                let is_function = TRIGGERS.contains(&bare) || did_you_mean(bare, TRIGGERS.iter().copied()).is_some();
                if is_function {
                    let help = suggestion(bare, TRIGGERS).map_or(format!("call it: `{bare}('...')`"), |s| s);
                    let help = if TRIGGERS.contains(&bare) { format!("call it: `{bare}('...')`") } else { help };
                    self.error(at, format!("unknown trigger `{bare}`"), Some(help));
                } else {
                    let help = did_you_mean(bare, dates.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "a trigger is a transition such as {}, or a date trait such as `renewal_date - 90d`",
                                list(&["segment_entered('id')", "milestone_missed('id')"])
                            )
                        });
                    self.error(at, format!("unknown trigger or date trait `{bare}`"), Some(help));
                }
                return None;
            }
        };
        if !matches!(ty, Type::Date | Type::Timestamp) {
            let help = Some("a date trigger counts from a date or timestamp trait, e.g. `renewal_date - 90d`".into());
            self.error(at, format!("`{bare}` is a {ty} trait, not a date"), help);
            return None;
        }
        let mut offset_days: i64 = 0;
        match tokens.get(1..) {
            None | Some([]) => {}
            Some([(Token::Punct(sign @ ('+' | '-')), _), (Token::Duration(d), d_span), rest @ ..]) => {
                let d_at = self.at_in(source, d_span.start);
                // A zero offset (`launch_date + 0d`) is the day itself; durations elsewhere
                // (a wait, a window) must be longer than zero.
                let zero = d.len() > 1
                    && d.bytes().take(d.len() - 1).all(|b| b == b'0')
                    && (d.ends_with('d') || d.ends_with('w'));
                let days = match parse_duration(d) {
                    _ if zero => 0,
                    Ok(dur) if dur.as_secs() % 86_400 == 0 => dur.as_secs() / 86_400,
                    Ok(_) => {
                        let help =
                            Some("a date trigger fires on a day: use whole days or weeks, e.g. `90d`, `2w`".into());
                        self.error(d_at, format!("the offset must be whole days or weeks, found `{d}`"), help);
                        return None;
                    }
                    Err(_) => {
                        let help = Some("write a whole number of days or weeks: `90d`, `2w`".into());
                        self.error(d_at, format!("`{d}` is not a duration"), help);
                        return None;
                    }
                };
                offset_days = if *sign == '-' { -days } else { days };
                if let Some((_, rest_span)) = rest.first() {
                    let rest_at = self.at_in(source, rest_span.start);
                    self.error(
                        rest_at,
                        "unexpected text after the trigger",
                        Some("a date trigger is `trait ± duration`, e.g. `renewal_date - 90d`".into()),
                    );
                    return None;
                }
            }
            Some([(_, rest_span), ..]) => {
                let rest_at = self.at_in(source, rest_span.start);
                self.error(
                    rest_at,
                    "expected `+` or `-` and a duration after the date trait",
                    Some("e.g. `renewal_date - 90d`".into()),
                );
                return None;
            }
        }
        Some(Trigger::Date(DateTrigger { owner: trait_owner, name: bare.to_string(), offset_days: offset_days as i32 }))
    }

    pub(super) fn unknown<'s>(
        &mut self,
        at: At,
        kind: &str,
        id: &str,
        known: impl Iterator<Item = &'s str>,
        plural: &str,
    ) {
        let known: Vec<&str> = known.collect();
        let help = did_you_mean(id, known.iter().copied()).map(|s| format!("did you mean `{s}`?")).or_else(|| {
            Some(if known.is_empty() {
                format!("no {plural} are defined")
            } else {
                format!("the {plural} are {}", list(&known))
            })
        });
        self.error(at, format!("unknown {kind} `{id}`"), help);
    }

    /// The file position of byte `byte` of a scalar's decoded text.
    pub(super) fn at_in(&self, source: &RuleSource, byte: usize) -> At {
        let text = self.files[source.at.file].text;
        At { file: source.at.file, offset: yaml::value_offset(text, source.at.offset, &source.text, byte) }
    }
}
