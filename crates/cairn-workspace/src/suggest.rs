//! "did you mean …?": the closest known name to a misspelt one (`cairn-core`'s
//! distance), with a limit that grows with the word: one edit for short keys, up to three
//! for long ids.

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
pub(crate) fn did_you_mean<'c>(input: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let limit = match input.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    cairn_core::suggest::closest_within(input, candidates, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swapped_pair_of_letters_is_one_edit() {
        assert_eq!(did_you_mean("wehre", ["id", "name", "of", "where"]), Some("where"));
    }

    #[test]
    fn far_away_names_are_not_suggested() {
        assert_eq!(did_you_mean("colour", ["id", "name", "of", "where"]), None);
    }

    #[test]
    fn the_closest_candidate_wins() {
        assert_eq!(did_you_mean("measure", ["measures", "weight"]), Some("measures"));
    }
}
