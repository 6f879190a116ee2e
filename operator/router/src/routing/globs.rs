//! Lists of `*`/`?` globs, matched the way `match.models` is everywhere: `*` any run of bytes
//! (`/` included), `?` one byte, everything else literal.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::normalize_glob;

/// A list of globs; an empty list allows everything.
#[derive(Debug, Clone, Default)]
pub struct Globs(Option<GlobSet>);

impl Globs {
    /// Prepares `patterns` (validated with [`crate::names::check_model_glob`]).
    pub fn new(patterns: &[String]) -> Self {
        if patterns.is_empty() {
            return Globs(None);
        }
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            // Validation admits only `*`, `?` and literals, which always compile.
            if let Ok(glob) = GlobBuilder::new(&normalize_glob(p))
                .literal_separator(false)
                .backslash_escape(false)
                .build()
            {
                builder.add(glob);
            }
        }
        // A set that will not build matches nothing rather than everything.
        Globs(Some(builder.build().unwrap_or_else(|_| GlobSet::empty())))
    }

    /// Whether `s` matches one of the globs, or there are none.
    pub fn allows(&self, s: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.is_match(s))
    }
}

#[cfg(test)]
mod tests {
    use super::Globs;

    #[test]
    fn globs_match_like_model_rules_and_empty_allows_all() {
        let g = Globs::new(&["llama-*".into(), "gpt-4?".into()]);
        assert!(g.allows("llama-3/8b") && g.allows("gpt-4o"));
        assert!(!g.allows("gpt-4-turbo") && !g.allows("mistral"));
        assert!(Globs::new(&[]).allows("anything"));
    }
}
