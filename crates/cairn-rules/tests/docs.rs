//! docs/rules.md stays true: every rule in its examples compiles, and every row of its
//! error table is what the compiler reports.

mod common;

use cairn_rules::{AggregateTable, Subject, Type, compile};

const DOC: &str = include_str!("../../../docs/rules.md");

/// Text between the first pair of backticks.
fn first_code(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let len = cell.get(start..)?.find('`')?;
    cell.get(start..start + len)
}

#[test]
fn every_example_rule_compiles() {
    let mut in_yaml = false;
    let mut subject = Subject::Account;
    let mut checked = 0;
    let mut in_programs = false;
    for line in DOC.lines() {
        let trimmed = line.trim();
        if let Some(heading) = trimmed.strip_prefix("## ") {
            in_programs = heading == "In programs";
        }
        if trimmed.starts_with("```") {
            in_yaml = trimmed == "```yaml";
            subject = Subject::Account;
            continue;
        }
        if !in_yaml {
            continue;
        }
        let body = trimmed.trim_start_matches("- ");
        if let Some(of) = body.strip_prefix("of:") {
            subject = if of.trim() == "contact" { Subject::Contact } else { Subject::Account };
            continue;
        }
        let Some((key, rule)) = body.split_once(':') else { continue };
        let expected = match key {
            "where" | "when" | "until" | "from" | "audience" => Type::Bool,
            "if" | "exit" if in_programs => Type::Bool,
            "value" => Type::Number,
            _ => continue,
        };
        let rule = rule.split(" #").next().unwrap_or("").trim();
        if rule == "true" || rule.is_empty() {
            continue;
        }
        let mut table = AggregateTable::new();
        let schema = if in_programs { common::program_schema() } else { common::schema(subject) };
        let result = compile(rule, &schema, Some(expected), &mut table);
        assert!(result.is_ok(), "docs/rules.md example `{rule}` does not compile: {result:?}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} examples found");
}

#[test]
fn the_error_table_shows_what_the_compiler_says() {
    let section = DOC.split("## Errors").nth(1).unwrap_or("");
    let mut checked = 0;
    for row in section.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| rule")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        let [rule_cell, message, help] = cells.as_slice() else { panic!("bad row {row}") };
        if help.contains('…') {
            continue;
        }
        let source = if *rule_cell == "(empty)" { "" } else { first_code(rule_cell).unwrap_or("") };
        let subject = if rule_cell.contains("in a contact rule") { Subject::Contact } else { Subject::Account };
        let schema =
            if rule_cell.contains("in a program") { common::program_schema() } else { common::schema(subject) };
        let mut table = AggregateTable::new();
        let errors = compile(source, &schema, Some(Type::Bool), &mut table).err().unwrap_or_default();
        let got: Vec<(&str, &str)> =
            errors.iter().map(|e| (e.message.as_str(), e.help.as_deref().unwrap_or(""))).collect();
        assert_eq!(got, vec![(*message, *help)], "docs/rules.md row for `{source}`");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} rows checked");
}
