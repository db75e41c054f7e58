//! "Did you mean …?": the closest known name to a misspelt one, shared by every place
//! that names things for people (the rule language, workspace keys, templates).

/// The candidate closest to `wrong` (case-insensitive Damerau–Levenshtein distance of at
/// most 2, and less than the length of `wrong`), ties broken by the order given.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    closest_within(wrong, candidates, 2.min(wrong.chars().count().saturating_sub(1)))
}

/// The candidate closest to `wrong` at a case-insensitive distance of at most `limit`,
/// ties broken by the order given.
pub fn closest_within<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>, limit: usize) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
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
pub fn edit_distance(a: &str, b: &str) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word_and_strangers_find_nothing() {
        assert_eq!(closest("cnt", ["count", "sum"]), Some("count"));
        assert_eq!(closest("wehre", ["id", "where"]), Some("where"));
        assert_eq!(closest("xyz", ["count", "sum"]), None);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest_within("dashbord_shared", ["dashboard_shared"], 3), Some("dashboard_shared"));
        assert_eq!(closest("Plan", ["plan", "plans"]), Some("plan"));
        assert_eq!(closest("x", ["y"]), None);
        assert_eq!(edit_distance("pnal", "plan"), 2);
        assert_eq!(edit_distance("plna", "plan"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
