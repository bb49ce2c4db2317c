//! `--filter`: which requests a report keeps, by their dimensions. `verb=list,watch`
//! keeps LISTs and WATCHes, `user_agent=kube-controller-manager/*` one client (`*`
//! matches any run of characters), `resource!=leases` all but lease traffic. Values
//! read as reports show them (`""` for empty, `-` for null). Several
//! filters must all hold. Work outside any request (the background) matches no filter.

use std::{fmt, str::FromStr};

use serde_json::Value;

use super::{
    dimension::{shown, Dimension},
    request::Request,
    rows::Stats,
};

/// Every filter of a report; empty keeps everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    conditions: Vec<Condition>,
}

/// One `DIMENSION=PATTERN[,PATTERN...]` or `DIMENSION!=...`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Condition {
    dimension: Dimension,
    /// `!=`: the value must match none of the patterns.
    negated: bool,
    patterns: Vec<String>,
}

/// A filter that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// No `=` or `!=`.
    #[error("filter {0:?} has no `=`: write DIMENSION=PATTERN, e.g. verb=list,watch or user_agent=kubelet/*")]
    NoOperator(String),
    /// Not a dimension's name.
    #[error("filter {filter:?}: there is no dimension {dimension:?}; use one of {known}")]
    UnknownDimension {
        /// The whole filter.
        filter: String,
        /// The name given.
        dimension: String,
        /// The names there are.
        known: String,
    },
}

impl Filter {
    /// Whether it keeps everything.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Adds one `DIMENSION=PATTERN[,PATTERN...]` (or `!=`).
    pub fn add(&mut self, text: &str) -> Result<(), FilterError> {
        self.conditions.push(text.parse()?);
        Ok(())
    }

    /// The dimensions it looks at.
    pub fn dimensions(&self) -> impl Iterator<Item = Dimension> + '_ {
        self.conditions.iter().map(|c| c.dimension)
    }

    /// Whether it keeps `request`.
    pub fn admits(&self, request: &Request) -> bool {
        self.keeps(|d| Some(&request.dimensions[d.index()]))
    }

    /// Whether it keeps a row's requests; a dimension the row's requests do not share
    /// (not kept by the row) matches no pattern.
    pub fn admits_row(&self, stats: &Stats) -> bool {
        self.keeps(|d| stats.dimensions.get(d.index()).and_then(Option::as_ref))
    }

    /// Whether it keeps work outside any request.
    pub fn admits_background(&self) -> bool {
        self.is_empty()
    }

    fn keeps<'v>(&self, value_of: impl Fn(Dimension) -> Option<&'v Value>) -> bool {
        self.conditions.iter().all(|c| {
            let matched = value_of(c.dimension).is_some_and(|value| {
                let text = shown(value);
                c.patterns.iter().any(|p| glob(p, &text))
            });
            matched != c.negated
        })
    }
}

impl fmt::Display for Filter {
    /// The filters as given, separated by spaces (for titles).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.conditions.iter().enumerate() {
            let op = if c.negated { "!=" } else { "=" };
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{}{op}{}", c.dimension.name(), c.patterns.join(","))?;
        }
        Ok(())
    }
}

impl FromStr for Condition {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, FilterError> {
        let (name, negated, patterns) = match text.split_once("!=") {
            Some((name, patterns)) => (name, true, patterns),
            None => match text.split_once('=') {
                Some((name, patterns)) => (name, false, patterns),
                None => return Err(FilterError::NoOperator(text.to_owned())),
            },
        };
        let dimension =
            <Dimension as clap::ValueEnum>::from_str(name.trim(), false).map_err(|_| {
                FilterError::UnknownDimension {
                    filter: text.to_owned(),
                    dimension: name.to_owned(),
                    known: Dimension::ALL.map(Dimension::name).join(","),
                }
            })?;
        Ok(Self {
            dimension,
            negated,
            patterns: patterns.split(',').map(str::to_owned).collect(),
        })
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("kubelet/*", "kubelet/v1.36 (linux/amd64)"));
        assert!(glob("*controller*", "kube-controller-manager/v1"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(glob("pods", "pods"));
        assert!(!glob("pods", "pods/log"));
        assert!(glob("*", ""));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn conditions_all_hold_and_patterns_any() {
        let mut filter = Filter::default();
        filter.add("verb=list,watch").unwrap();
        filter.add("resource!=leases").unwrap();
        let row = |verb: &str, resource: &str| {
            let mut dimensions = vec![Value::Null; Dimension::ALL.len()];
            dimensions[Dimension::Verb.index()] = Value::from(verb);
            dimensions[Dimension::Resource.index()] = Value::from(resource);
            Stats::of(&dimensions)
        };
        assert!(filter.admits_row(&row("list", "pods")));
        assert!(filter.admits_row(&row("watch", "pods")));
        assert!(!filter.admits_row(&row("get", "pods")));
        assert!(!filter.admits_row(&row("list", "leases")));
        assert!(!filter.admits_background());
        assert_eq!(filter.to_string(), "verb=list,watch resource!=leases");
    }

    #[test]
    fn a_bad_filter_names_the_fix() {
        let mut filter = Filter::default();
        let e = filter.add("verb").unwrap_err().to_string();
        assert!(e.contains("DIMENSION=PATTERN"), "{e}");
        let e = filter.add("verbs=list").unwrap_err().to_string();
        assert!(
            e.contains("no dimension \"verbs\"") && e.contains("user_agent"),
            "{e}"
        );
    }
}
