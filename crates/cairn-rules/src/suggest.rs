//! "Did you mean …?": the closest known name to a misspelt one.

/// The candidate closest to `wrong` (case-insensitive Damerau–Levenshtein distance of at
/// most 2, and less than the length of `wrong`), ties broken by the order given.
pub(crate) fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    let limit = 2.min(wrong.chars().count().saturating_sub(1));
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&wrong_lower, &candidate.to_lowercase());
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of
/// two neighbouring characters each cost 1.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    // Rows i-2, i-1 and i of the usual dynamic-programming table.
    let mut before: Vec<usize> = vec![0; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current: Vec<usize> = vec![0; width];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut d = (previous[j + 1] + 1).min(current[j] + 1).min(previous[j] + cost);
            if i > 0 && j > 0 && a.get(i - 1) == Some(cb) && b.get(j - 1) == Some(ca) {
                d = d.min(before[j - 1] + 1);
            }
            current[j + 1] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

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
    fn distances() {
        assert_eq!(edit_distance("cnt", "count"), 2);
        assert_eq!(edit_distance("arr", "arr"), 0);
        assert_eq!(edit_distance("pnal", "plan"), 2);
        assert_eq!(edit_distance("plna", "plan"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_prefers_the_nearest_and_ignores_case() {
        assert_eq!(closest("cnt", ["count", "sum"]), Some("count"));
        assert_eq!(closest("Plan", ["plan", "plans"]), Some("plan"));
        assert_eq!(closest("zzzzzz", ["plan"]), None);
        assert_eq!(closest("x", ["y"]), None);
    }

    #[test]
    fn lists_names_readably() {
        assert_eq!(list_names(["a"]), "`a`");
        assert_eq!(list_names(["a", "b", "c"]), "`a`, `b` and `c`");
        let many: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        assert!(list_names(many.iter().map(String::as_str)).ends_with("… (10 in all)"));
    }
}
