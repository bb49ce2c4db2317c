//! What the apiserver makes of a request: its verb, resource and resourceVersion
//! semantics, written out here from the Kubernetes API documentation and the
//! apiserver's RequestInfo rules — independently of apiprof, whose attribution this
//! truth is checked against.
//!
//! The resourceVersion semantics are the tables of "Resource versions" in the API
//! concepts (<https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions>:
//! "Semantics for get and list", "Semantics for watch"; and "Streaming lists"),
//! transcribed cell by cell in the documentation's words and looked up by the
//! request's parameters. apiprof's `rv_class.rs` decides the same with a `match`; the
//! two are written differently on purpose, so that a misreading of the documentation
//! cannot hide in both.

/// The verb the apiserver's RequestInfoFactory gives a resource request.
pub fn verb(method: &str, path: &str, query: &str) -> &'static str {
    let named = resource_path(path).is_some_and(|p| p.name.is_some());
    match method {
        "GET" | "HEAD" if is_watch(query) => "watch",
        "GET" | "HEAD" if named => "get",
        "GET" | "HEAD" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if named => "delete",
        "DELETE" => "deletecollection",
        _ => "unknown",
    }
}

/// The resource a path names (`configmaps`), empty for non-resource paths.
pub fn resource(path: &str) -> String {
    resource_path(path).map_or_else(String::new, |p| p.resource.to_owned())
}

/// The resourceVersion semantics of a read (`get`, `list`, `watch`), `None` for writes:
/// the cell of the documentation's table (see [`GET`], [`LIST`], [`WATCH`]) that the
/// query's parameters select, named by [`rv_class_name`]; `invalid` where no row
/// matches.
pub fn rv_class(verb: &str, query: &str) -> Option<&'static str> {
    let column = match param(query, "resourceVersion") {
        None => 0,
        Some("0") => 1,
        Some(_) => 2,
    };
    let rv_match = match param(query, "resourceVersionMatch") {
        None => "unset",
        Some(other) => other,
    };
    let initial_events = match param(query, "sendInitialEvents").map(flag) {
        None => "unset",
        Some(true) => "true",
        Some(false) => "false",
    };
    let cells = match verb {
        "get" => Some(&GET),
        "list" if initial_events == "unset" => LIST
            .iter()
            .find(|(m, p, _)| *m == rv_match && *p == paging(query))
            .map(|(.., cells)| cells),
        "list" => None,
        "watch" => WATCH
            .iter()
            .find(|(i, m, _)| *i == initial_events && *m == rv_match)
            .map(|(.., cells)| cells),
        _ => return None,
    };
    Some(cells.map_or("invalid", |cells| rv_class_name(cells[column])))
}

// The tables below are transcribed from "Resource versions" in the Kubernetes API
// concepts, https://kubernetes.io/docs/reference/using-api/api-concepts/ (sections
// "Semantics for get and list", "Semantics for watch" and "Streaming lists"): each
// row's cells are for resourceVersion unset, "0" and any other value, in the
// documentation's own words.

/// "get" (resourceVersionMatch is a parameter of lists; a get ignores it).
const GET: [&str; 3] = ["Most Recent", "Any", "Not older than"];

/// "resourceVersionMatch and paging parameters for list": (resourceVersionMatch,
/// paging parameters, cells). Combinations without a row (resourceVersionMatch with a
/// continue token, an unknown resourceVersionMatch, sendInitialEvents on a list) are
/// refused by the apiserver's `ValidateListOptions`.
const LIST: [(&str, &str, [&str; 3]); 7] = [
    (
        "unset",
        "limit unset",
        ["Most Recent", "Any", "Not older than"],
    ),
    (
        "unset",
        "limit=<n>, continue unset",
        ["Most Recent", "Any", "Exact"],
    ),
    (
        "unset",
        "limit=<n>, continue=<token>",
        [
            "Continue Token, Exact",
            "Invalid, treated as Continue Token, Exact",
            "Invalid, HTTP 400 Bad Request",
        ],
    ),
    ("Exact", "limit unset", ["Invalid", "Invalid", "Exact"]),
    (
        "Exact",
        "limit=<n>, continue unset",
        ["Invalid", "Invalid", "Exact"],
    ),
    (
        "NotOlderThan",
        "limit unset",
        ["Invalid", "Any", "Not older than"],
    ),
    (
        "NotOlderThan",
        "limit=<n>, continue unset",
        ["Invalid", "Any", "Not older than"],
    ),
];

/// "resourceVersion for watch", and "Streaming lists": (sendInitialEvents,
/// resourceVersionMatch, cells). sendInitialEvents requires
/// resourceVersionMatch=NotOlderThan; unset, the bookmark comes at a consistent read,
/// with a value "at least to the provided resource version". Its default ("true if
/// resourceVersion is unset or 0, false otherwise", the ListOptions reference) makes
/// `false` the plain watch's table. A watch names no resourceVersionMatch otherwise.
const WATCH: [(&str, &str, [&str; 3]); 3] = [
    (
        "unset",
        "unset",
        [
            "Get State and Start at Most Recent",
            "Get State and Start at Any",
            "Start at Exact",
        ],
    ),
    (
        "true",
        "NotOlderThan",
        ["Consistent read", "Any", "Not older than"],
    ),
    (
        "false",
        "NotOlderThan",
        ["Start at Most Recent", "Start at Any", "Start at Exact"],
    ),
];

/// The paging parameters column of [`LIST`]: a continue token continues whatever the
/// limit; a limit pages only when positive (the apiserver reads 0 as no limit).
fn paging(query: &str) -> &'static str {
    let limit = param(query, "limit").and_then(|l| l.parse::<i64>().ok());
    match (param(query, "continue"), limit) {
        (Some(_), _) => "limit=<n>, continue=<token>",
        (None, Some(n)) if n > 0 => "limit=<n>, continue unset",
        (None, _) => "limit unset",
    }
}

/// apiprof's name for a semantics the documentation describes.
fn rv_class_name(doc: &str) -> &'static str {
    match doc.strip_prefix("Invalid, treated as ") {
        Some(treated_as) => rv_class_name(treated_as),
        None if doc.starts_with("Invalid") => "invalid",
        None => match doc.trim_start_matches("Get State and ") {
            "Most Recent" | "Start at Most Recent" | "Consistent read" => "most_recent",
            "Any" | "Start at Any" => "any",
            "Not older than" => "not_older_than",
            "Exact" | "Start at Exact" => "exact",
            "Continue Token, Exact" => "continue",
            other => panic!("{other:?}: a semantics the documentation does not name"),
        },
    }
}

/// A boolean parameter's value as the apiserver reads it (apimachinery's
/// `Convert_Slice_string_To_bool`): "0" and "false" in any case are false, anything else
/// true.
fn flag(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

/// `watch=true`, `watch=1`, or any value but "0" and "false".
fn is_watch(query: &str) -> bool {
    param(query, "watch").is_some_and(flag)
}

/// The first non-empty value of query parameter `name` (as sent; the values compared
/// here never need percent-decoding).
fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

struct ResourcePath<'p> {
    resource: &'p str,
    name: Option<&'p str>,
}

/// `/api/v1[/namespaces/NS]/RESOURCE[/NAME[/SUB]]` or
/// `/apis/GROUP/VERSION[/namespaces/NS]/RESOURCE[/NAME[/SUB]]`.
fn resource_path(path: &str) -> Option<ResourcePath<'_>> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return None,
    };
    let rest = match rest {
        // `namespaces/NS` alone names the namespace object itself.
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    let (resource, rest) = rest.split_first()?;
    Some(ResourcePath {
        resource,
        name: rest.first().copied(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMS: &str = "/api/v1/namespaces/default/configmaps";
    const ONE: &str = "/api/v1/namespaces/default/configmaps/a";

    #[test]
    fn verbs_follow_method_name_and_watch_flag() {
        assert_eq!(verb("GET", ONE, ""), "get");
        assert_eq!(verb("GET", CMS, "&labelSelector=a%3Db"), "list");
        assert_eq!(verb("GET", CMS, "&watch=true&resourceVersion=5"), "watch");
        assert_eq!(verb("GET", CMS, "watch=1"), "watch");
        assert_eq!(verb("GET", CMS, "watch=false"), "list");
        assert_eq!(verb("POST", CMS, ""), "create");
        assert_eq!(verb("PUT", ONE, ""), "update");
        assert_eq!(verb("PATCH", ONE, "fieldManager=x&force=true"), "patch");
        assert_eq!(verb("DELETE", ONE, ""), "delete");
        assert_eq!(verb("DELETE", CMS, "labelSelector=a"), "deletecollection");
        assert_eq!(verb("GET", "/api/v1/namespaces/default", ""), "get");
        assert_eq!(resource(ONE), "configmaps");
        assert_eq!(resource("/apis/apps/v1/deployments"), "deployments");
        assert_eq!(resource("/api/v1/namespaces/default"), "namespaces");
        assert_eq!(resource("/healthz"), "");
    }

    /// Every cell of the three tables, by the query that selects it.
    #[test]
    fn rv_classes_are_the_documented_cells() {
        let cases = [
            ("get", "", "most_recent"),
            ("get", "resourceVersion=0", "any"),
            ("get", "resourceVersion=12", "not_older_than"),
            ("get", "resourceVersion=12&resourceVersionMatch=Exact", "not_older_than"),
            ("list", "labelSelector=a", "most_recent"),
            ("list", "resourceVersion=", "most_recent"),
            ("list", "resourceVersion=0", "any"),
            ("list", "resourceVersion=12", "not_older_than"),
            ("list", "limit=500", "most_recent"),
            ("list", "limit=500&resourceVersion=0", "any"),
            ("list", "limit=500&resourceVersion=12", "exact"),
            ("list", "limit=0&resourceVersion=12", "not_older_than"),
            ("list", "limit=2&continue=eyJ2", "continue"),
            ("list", "limit=2&continue=eyJ2&resourceVersion=0", "continue"),
            ("list", "limit=2&continue=eyJ2&resourceVersion=12", "invalid"),
            ("list", "resourceVersionMatch=Exact", "invalid"),
            ("list", "resourceVersionMatch=Exact&resourceVersion=0", "invalid"),
            ("list", "resourceVersionMatch=Exact&resourceVersion=12", "exact"),
            ("list", "resourceVersionMatch=Exact&resourceVersion=12&limit=5", "exact"),
            ("list", "resourceVersionMatch=NotOlderThan", "invalid"),
            ("list", "resourceVersionMatch=NotOlderThan&resourceVersion=0", "any"),
            ("list", "resourceVersionMatch=NotOlderThan&resourceVersion=0&limit=500", "any"),
            ("list", "resourceVersionMatch=NotOlderThan&resourceVersion=12", "not_older_than"),
            ("list", "resourceVersionMatch=NotOlderThan&resourceVersion=12&limit=5", "not_older_than"),
            ("list", "resourceVersionMatch=NotOlderThan&resourceVersion=0&continue=eyJ2", "invalid"),
            ("list", "sendInitialEvents=true&resourceVersionMatch=NotOlderThan", "invalid"),
            ("watch", "watch=true", "most_recent"),
            ("watch", "watch=true&resourceVersion=0", "any"),
            ("watch", "watch=true&allowWatchBookmarks=true&resourceVersion=77", "exact"),
            ("watch", "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", "most_recent"),
            ("watch", "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0", "any"),
            ("watch", "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=77", "not_older_than"),
            ("watch", "watch=1&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&resourceVersion=77", "exact"),
            ("watch", "watch=1&sendInitialEvents=true", "invalid"),
            ("watch", "watch=1&resourceVersionMatch=NotOlderThan&resourceVersion=77", "invalid"),
        ];
        for (verb, query, class) in cases {
            assert_eq!(rv_class(verb, query), Some(class), "{verb} ?{query}");
        }
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            assert_eq!(rv_class(verb, "resourceVersion=0"), None, "{verb}");
        }
    }
}
