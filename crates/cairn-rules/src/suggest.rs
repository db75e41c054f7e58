//! "Did you mean …?": the closest known name to a misspelt one (from `cairn-core`), and
//! lists of names for help texts.

pub(crate) use cairn_core::suggest::closest;

/// `names` as "`a`, `b` and `c`", cut after a few with "…".
pub(crate) fn list_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 8;
    let names: Vec<&str> = names.into_iter().collect();
    let quoted: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    let mut text = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    };
    if names.len() > SHOWN {
        text = format!("{}, … ({} in all)", quoted.join(", "), names.len());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_names_readably() {
        assert_eq!(list_names(["a"]), "`a`");
        assert_eq!(list_names(["a", "b", "c"]), "`a`, `b` and `c`");
        let many: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        assert!(list_names(many.iter().map(String::as_str)).ends_with("… (10 in all)"));
    }
}
