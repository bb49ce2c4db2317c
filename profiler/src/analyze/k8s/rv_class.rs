//! resourceVersion semantics of reads, and whether a selector narrows them.
//!
//! As documented for the API ("Resource versions", Kubernetes API concepts): for `get`
//! and `list`, resourceVersion unset is a quorum read of the most recent data (from
//! etcd), "0" is any data (the watch cache), another value means not older than it, and
//! `resourceVersionMatch=Exact` asks for exactly it; a `continue` token pages on from
//! the snapshot of the first page. A `watch` from a given resourceVersion starts exactly
//! there.

use std::fmt;

use serde::Serialize;

use super::Query;

/// How fresh the data a read asks for must be, and so where the apiserver serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RvClass {
    /// resourceVersion unset: quorum read of the latest data (etcd).
    MostRecent,
    /// resourceVersion "0": any data (the watch cache).
    Any,
    /// A resourceVersion, or `resourceVersionMatch=NotOlderThan`.
    NotOlderThan,
    /// `resourceVersionMatch=Exact` (and a watch from a given resourceVersion).
    Exact,
    /// A continue token: the next page of an earlier list.
    Continue,
    /// Not known: the query was longer than apiprof copies, and cut before the
    /// parameters that decide the class.
    Unknown,
}

impl RvClass {
    /// The class of a `get`, `list` or `watch` with this query; `None` for other verbs.
    ///
    /// With `cut`, `query` holds only the complete parameters before a cut, and the
    /// class is [`Self::Unknown`] unless no later parameter could change it: a
    /// `continue` token; resourceVersion "0" (the apiserver refuses it with a token,
    /// and a match does not change it); a watch's resourceVersion; or both
    /// resourceVersion and resourceVersionMatch.
    pub fn of(verb: &str, query: &Query, cut: bool) -> Option<Self> {
        if !matches!(verb, "get" | "list" | "watch") {
            return None;
        }
        if verb == "list" && query.non_empty("continue").is_some() {
            return Some(Self::Continue);
        }
        let rv = query.non_empty("resourceVersion");
        Some(match (rv, query.non_empty("resourceVersionMatch")) {
            (Some("0"), _) => Self::Any,
            (Some(_), Some("Exact")) => Self::Exact,
            (Some(_), _) if verb == "watch" => Self::Exact,
            (Some(_), Some(_)) => Self::NotOlderThan,
            _ if cut => Self::Unknown,
            (None, _) => Self::MostRecent,
            (Some(_), None) => Self::NotOlderThan,
        })
    }

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MostRecent => "most_recent",
            Self::Any => "any",
            Self::NotOlderThan => "not_older_than",
            Self::Exact => "exact",
            Self::Continue => "continue",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for RvClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which selectors narrow a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// Neither.
    None,
    /// `labelSelector` only.
    Label,
    /// `fieldSelector` only.
    Field,
    /// Both.
    LabelAndField,
}

impl Selector {
    /// The selectors present (non-empty) in `query`.
    pub fn of(query: &Query) -> Self {
        match (
            query.non_empty("labelSelector").is_some(),
            query.non_empty("fieldSelector").is_some(),
        ) {
            (false, false) => Self::None,
            (true, false) => Self::Label,
            (false, true) => Self::Field,
            (true, true) => Self::LabelAndField,
        }
    }

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Label => "label",
            Self::Field => "field",
            Self::LabelAndField => "label_and_field",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(verb: &str, query: &str) -> Option<RvClass> {
        RvClass::of(verb, &Query::parse(query), false)
    }

    #[test]
    fn a_cut_query_is_classified_only_when_nothing_after_the_cut_could_change_it() {
        let cut = |verb: &str, query: &str| RvClass::of(verb, &Query::parse(query), true);
        // client-go sorts parameters: a long labelSelector comes before resourceVersion.
        assert_eq!(cut("list", "labelSelector=a%3Db"), Some(RvClass::Unknown));
        assert_eq!(
            cut("watch", "allowWatchBookmarks=true"),
            Some(RvClass::Unknown)
        );
        // resourceVersionMatch may follow resourceVersion.
        assert_eq!(cut("list", "resourceVersion=12"), Some(RvClass::Unknown));
        assert_eq!(cut("list", "continue=eyJ2Ijo"), Some(RvClass::Continue));
        assert_eq!(cut("list", "resourceVersion=0"), Some(RvClass::Any));
        assert_eq!(cut("watch", "resourceVersion=12"), Some(RvClass::Exact));
        assert_eq!(
            cut(
                "list",
                "resourceVersion=12&resourceVersionMatch=NotOlderThan"
            ),
            Some(RvClass::NotOlderThan)
        );
        assert_eq!(
            cut("get", "resourceVersion=12&resourceVersionMatch=Exact"),
            Some(RvClass::Exact)
        );
        assert_eq!(cut("create", ""), None);
    }

    #[test]
    fn list_classes_follow_the_api_documentation() {
        assert_eq!(class("list", ""), Some(RvClass::MostRecent));
        assert_eq!(class("list", "resourceVersion="), Some(RvClass::MostRecent));
        assert_eq!(
            class("list", "resourceVersion=0&limit=500"),
            Some(RvClass::Any)
        );
        assert_eq!(
            class(
                "list",
                "resourceVersion=0&resourceVersionMatch=NotOlderThan"
            ),
            Some(RvClass::Any)
        );
        assert_eq!(
            class("list", "resourceVersion=123"),
            Some(RvClass::NotOlderThan)
        );
        assert_eq!(
            class(
                "list",
                "resourceVersion=123&resourceVersionMatch=NotOlderThan"
            ),
            Some(RvClass::NotOlderThan)
        );
        assert_eq!(
            class("list", "resourceVersion=123&resourceVersionMatch=Exact"),
            Some(RvClass::Exact)
        );
        assert_eq!(
            class("list", "limit=2&continue=eyJ2Ijo"),
            Some(RvClass::Continue)
        );
    }

    #[test]
    fn gets_watches_and_writes() {
        assert_eq!(class("get", ""), Some(RvClass::MostRecent));
        assert_eq!(class("get", "resourceVersion=0"), Some(RvClass::Any));
        assert_eq!(class("watch", "resourceVersion=0"), Some(RvClass::Any));
        assert_eq!(
            class("watch", "resourceVersion=77&allowWatchBookmarks=true"),
            Some(RvClass::Exact)
        );
        assert_eq!(class("watch", ""), Some(RvClass::MostRecent));
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            assert_eq!(class(verb, "resourceVersion=0"), None, "{verb}");
        }
    }

    #[test]
    fn selectors_present_only_when_not_empty() {
        let s = |q: &str| Selector::of(&Query::parse(q));
        assert_eq!(s(""), Selector::None);
        assert_eq!(s("labelSelector="), Selector::None);
        assert_eq!(s("labelSelector=app%3Dweb"), Selector::Label);
        assert_eq!(s("fieldSelector=metadata.name%3Da"), Selector::Field);
        assert_eq!(
            s("labelSelector=a&fieldSelector=b"),
            Selector::LabelAndField
        );
    }
}
