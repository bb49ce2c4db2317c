//! resourceVersion semantics of reads, and whether a selector narrows them.
//!
//! As documented in "Resource versions" of the Kubernetes API concepts
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions>):
//! - **get**: resourceVersion unset is the most recent data (a consistent read), "0" any
//!   data, another value data not older than it; `resourceVersionMatch` is a parameter
//!   of lists only.
//! - **list**: the same without a `limit`; with a `limit` (and no `continue`) another
//!   value means exactly it; `resourceVersionMatch=Exact` or `NotOlderThan` says which,
//!   and needs a resourceVersion; a `continue` token pages on from the first page's
//!   snapshot ("Continue Token, Exact"), and with a resourceVersion other than "0" is a
//!   `400 Bad Request`.
//! - **watch**: unset starts at the most recent version, "0" at any, another value
//!   exactly there; with `sendInitialEvents=true` ("Streaming lists", which requires
//!   `resourceVersionMatch=NotOlderThan`) another value means not older than it.
//!
//! What the tables call invalid is [`RvClass::Invalid`]; the combinations they do not
//! list are refused by the apiserver's `ValidateListOptions` (resourceVersionMatch with
//! `continue`, `sendInitialEvents` on a list, `resourceVersionMatch` on a watch without
//! `sendInitialEvents`).

use std::fmt;

use serde::Serialize;

use super::Query;

/// How fresh the data a read asks for must be, and so where the apiserver serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RvClass {
    /// resourceVersion unset: the most recent data (a consistent read).
    MostRecent,
    /// resourceVersion "0": any data (the watch cache).
    Any,
    /// Data not older than the resourceVersion given.
    NotOlderThan,
    /// Exactly the resourceVersion given (a watch starts exactly there).
    Exact,
    /// A continue token: the next page of an earlier list.
    Continue,
    /// A combination the API refuses (`400 Bad Request` or `422 Unprocessable`).
    Invalid,
    /// Not known: the query was longer than apiprof copies, and cut before all the
    /// parameters that decide the class were read.
    Unknown,
}

/// The parameters that decide a read's class, by verb.
const DECIDING_GET: [&str; 1] = ["resourceVersion"];
const DECIDING_LIST: [&str; 5] = [
    "resourceVersion",
    "resourceVersionMatch",
    "continue",
    "limit",
    "sendInitialEvents",
];
const DECIDING_WATCH: [&str; 3] = [
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
];

const NOT_OLDER_THAN: &str = "NotOlderThan";
const EXACT: &str = "Exact";

impl RvClass {
    /// The class of a `get`, `list` or `watch` with this query; `None` for other verbs.
    ///
    /// With `cut`, `query` holds only the complete parameters before a cut: unless
    /// every parameter that decides the verb's class is among them, any could follow
    /// the cut, and the class is [`Self::Unknown`], never a guess.
    pub fn of(verb: &str, query: &Query, cut: bool) -> Option<Self> {
        type Class = fn(Option<&str>, &Query) -> Option<RvClass>;
        let (deciding, class): (&[&str], Class) = match verb {
            "get" => (&DECIDING_GET, |rv, _| {
                Some(Self::by_version(rv, Self::NotOlderThan))
            }),
            "list" => (&DECIDING_LIST, |rv, q| Some(Self::of_list(rv, q))),
            // A list or a watch whose `watch` parameter was cut off (see RequestInfo).
            "unknown" => (&DECIDING_LIST, |_, _| None),
            "watch" => (&DECIDING_WATCH, |rv, q| Some(Self::of_watch(rv, q))),
            _ => return None,
        };
        if cut && deciding.iter().any(|p| query.get(p).is_none()) {
            return Some(Self::Unknown);
        }
        class(query.non_empty("resourceVersion"), query)
    }

    /// unset, "0" and any other resourceVersion: most recent, any, and `other`.
    fn by_version(rv: Option<&str>, other: Self) -> Self {
        match rv {
            None => Self::MostRecent,
            Some("0") => Self::Any,
            Some(_) => other,
        }
    }

    fn of_list(rv: Option<&str>, query: &Query) -> Self {
        let continued = query.non_empty("continue").is_some();
        match (query.non_empty("resourceVersionMatch"), rv) {
            _ if query.get("sendInitialEvents").is_some() || bad_limit(query) => Self::Invalid,
            // "Continue Token, Exact"; with "0": "Invalid, treated as Continue Token,
            // Exact"; with another value: "Invalid, HTTP 400 Bad Request".
            (None, None | Some("0")) if continued => Self::Continue,
            (None, Some(_)) if continued => Self::Invalid,
            (None, rv) if has_limit(query) => Self::by_version(rv, Self::Exact),
            (None, rv) => Self::by_version(rv, Self::NotOlderThan),
            (Some(_), _) if continued => Self::Invalid,
            (Some(_), None) | (Some(EXACT), Some("0")) => Self::Invalid,
            (Some(EXACT), Some(_)) => Self::Exact,
            (Some(NOT_OLDER_THAN), rv) => Self::by_version(rv, Self::NotOlderThan),
            (Some(_), Some(_)) => Self::Invalid,
        }
    }

    fn of_watch(rv: Option<&str>, query: &Query) -> Self {
        let rv_match = query.non_empty("resourceVersionMatch");
        match (query.flag("sendInitialEvents"), rv_match) {
            (None, None) => Self::by_version(rv, Self::Exact),
            (Some(true), Some(NOT_OLDER_THAN)) => Self::by_version(rv, Self::NotOlderThan),
            (Some(false), Some(NOT_OLDER_THAN)) => Self::by_version(rv, Self::Exact),
            _ => Self::Invalid,
        }
    }

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MostRecent => "most_recent",
            Self::Any => "any",
            Self::NotOlderThan => "not_older_than",
            Self::Exact => "exact",
            Self::Continue => "continue",
            Self::Invalid => "invalid",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for RvClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `limit` the apiserver pages by: a positive number (it reads 0 as no limit).
fn has_limit(query: &Query) -> bool {
    query
        .non_empty("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .is_some_and(|l| l > 0)
}

/// A `limit` that is not a number: the apiserver refuses the request (400).
fn bad_limit(query: &Query) -> bool {
    query
        .non_empty("limit")
        .is_some_and(|l| l.parse::<i64>().is_err())
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
    fn a_cut_query_is_classified_only_when_every_deciding_parameter_was_read() {
        let cut = |verb: &str, query: &str| RvClass::of(verb, &Query::parse(query), true);
        // client-go sorts parameters: a long labelSelector comes before resourceVersion.
        assert_eq!(cut("list", "labelSelector=a%3Db"), Some(RvClass::Unknown));
        assert_eq!(
            cut("watch", "allowWatchBookmarks=true"),
            Some(RvClass::Unknown)
        );
        // A limit or a continue token may follow.
        assert_eq!(cut("list", "resourceVersion=0"), Some(RvClass::Unknown));
        assert_eq!(cut("get", "resourceVersion=0"), Some(RvClass::Any));
        assert_eq!(cut("get", "labelSelector=x"), Some(RvClass::Unknown));
        assert_eq!(
            cut(
                "watch",
                "resourceVersion=12&resourceVersionMatch=NotOlderThan&sendInitialEvents=true"
            ),
            Some(RvClass::NotOlderThan)
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

    /// "resourceVersionMatch and paging parameters for list" (API concepts, Semantics for
    /// get and list): with `limit=<n>` and no `continue`, a resourceVersion other than
    /// "0" is "Exact", not "Not older than" as without a limit.
    #[test]
    fn a_limited_list_at_a_version_is_exact() {
        assert_eq!(
            class("list", "resourceVersion=123&limit=500"),
            Some(RvClass::Exact)
        );
        assert_eq!(
            class(
                "list",
                "resourceVersion=123&limit=500&resourceVersionMatch=NotOlderThan"
            ),
            Some(RvClass::NotOlderThan)
        );
        // The apiserver pages only by a positive limit.
        assert_eq!(
            class("list", "resourceVersion=123&limit=0"),
            Some(RvClass::NotOlderThan)
        );
        assert_eq!(
            class("list", "limit=500&resourceVersion=0&continue=eyJ2"),
            Some(RvClass::Continue)
        );
    }

    /// The same table's "Invalid" cells, and what `ValidateListOptions` refuses where the
    /// table has no row (resourceVersionMatch with continue, sendInitialEvents on a list).
    #[test]
    fn combinations_the_api_refuses_are_invalid() {
        for query in [
            "limit=2&continue=eyJ2&resourceVersion=123",
            "resourceVersionMatch=NotOlderThan",
            "resourceVersionMatch=Exact",
            "resourceVersionMatch=Exact&resourceVersion=0",
            "resourceVersionMatch=Fresh&resourceVersion=12",
            "resourceVersionMatch=NotOlderThan&resourceVersion=0&continue=eyJ2",
            "sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
        ] {
            assert_eq!(class("list", query), Some(RvClass::Invalid), "{query}");
        }
    }

    /// "Semantics for get and list": the get table has resourceVersion only;
    /// resourceVersionMatch is a parameter of lists.
    #[test]
    fn a_get_ignores_resource_version_match() {
        assert_eq!(
            class("get", "resourceVersion=12&resourceVersionMatch=Exact"),
            Some(RvClass::NotOlderThan)
        );
    }

    /// "Streaming lists": `sendInitialEvents=true` requires
    /// `resourceVersionMatch=NotOlderThan`; unset is a consistent read, a value is
    /// synced to "at least the provided resource version". Without sendInitialEvents a
    /// watch takes no resourceVersionMatch (`validateWatchOptions`).
    #[test]
    fn a_streaming_list_watch_is_not_older_than_its_version() {
        let streaming = "sendInitialEvents=true&resourceVersionMatch=NotOlderThan";
        assert_eq!(class("watch", streaming), Some(RvClass::MostRecent));
        assert_eq!(
            class("watch", &format!("{streaming}&resourceVersion=")),
            Some(RvClass::MostRecent)
        );
        assert_eq!(
            class("watch", &format!("{streaming}&resourceVersion=0")),
            Some(RvClass::Any)
        );
        assert_eq!(
            class("watch", &format!("{streaming}&resourceVersion=77")),
            Some(RvClass::NotOlderThan)
        );
        assert_eq!(
            class(
                "watch",
                "sendInitialEvents=false&resourceVersionMatch=NotOlderThan&resourceVersion=77"
            ),
            Some(RvClass::Exact)
        );
        for query in [
            "sendInitialEvents=true",
            "sendInitialEvents=true&resourceVersionMatch=Exact&resourceVersion=77",
            "resourceVersionMatch=NotOlderThan&resourceVersion=77",
            "resourceVersionMatch=Exact&resourceVersion=77",
        ] {
            assert_eq!(class("watch", query), Some(RvClass::Invalid), "{query}");
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
