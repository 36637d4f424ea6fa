//! Small text helpers shared by the error messages.

/// `"; did you mean 'x'?"` for the closest candidate, or nothing when none is close.
pub(crate) fn suggest<S: AsRef<str>>(name: &str, candidates: &[S]) -> String {
    candidates
        .iter()
        .map(|c| {
            let (a, b) = (name.to_lowercase(), c.as_ref().to_lowercase());
            let mut score = strsim::normalized_damerau_levenshtein(&a, &b);
            // "maximum" for "max", "alc" for "alcohol": a prefix is a strong hint.
            if a.starts_with(&b) || b.starts_with(&a) {
                score = score.max(0.6);
            }
            (score, c.as_ref())
        })
        .filter(|(score, _)| *score >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean '{c}'?"))
        .unwrap_or_default()
}
