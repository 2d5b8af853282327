//! "Did you mean …?" for a name that does not exist: the known names nearest to it.

/// How alike two names must be (Jaro–Winkler similarity, case folded) to be suggested.
const SIMILAR: f64 = 0.8;

/// Up to three known names nearest to `name`, most alike first: those within [`SIMILAR`], or
/// that contain it or are contained in it (case folded).
pub fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted = name.to_lowercase();
    let mut scored: Vec<(f64, &str)> = known
        .into_iter()
        .filter(|k| *k != name)
        .filter_map(|k| {
            let candidate = k.to_lowercase();
            let score = strsim::jaro_winkler(&wanted, &candidate);
            let overlaps =
                !wanted.is_empty() && (candidate.contains(&wanted) || wanted.contains(&candidate));
            (score >= SIMILAR || overlaps).then_some((score, k))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, k)| k).collect()
}

/// `; did you mean 'a' or 'b'?` for the names nearest to `name`, or "" when none is near.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let near = nearest(name, known);
    match near.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean '{one}'?"),
        [rest @ .., last] => format!(
            "; did you mean {} or '{last}'?",
            rest.iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_offered_and_far_ones_not() {
        let known = ["customers", "customer-churn", "orders", "shapes"];
        assert_eq!(nearest("custmers", known)[0], "customers");
        assert_eq!(nearest("churn", known), ["customer-churn"]);
        assert!(nearest("zebra", known).is_empty());
        assert_eq!(did_you_mean("Orders", known), "; did you mean 'orders'?");
        assert_eq!(did_you_mean("zebra", known), "");
    }
}
