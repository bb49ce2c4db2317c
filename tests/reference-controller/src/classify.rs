//! What the apiserver makes of a request: its verb, resource and resourceVersion
//! semantics, written out here from the Kubernetes API documentation ("API Concepts":
//! Efficient detection of changes, Retrieving large results sets in chunks, Resource
//! versions) and the apiserver's RequestInfo rules — independently of apiprof, whose
//! attribution this truth is checked against.

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

/// The resourceVersion semantics of a read (`get`, `list`, `watch`), `None` for writes.
///
/// - a `continue` token pages on from the first page's snapshot: `continue`;
/// - resourceVersion unset: the most recent data (a consistent read): `most_recent`;
/// - `resourceVersion=0`: any data, served from the watch cache: `any` (for a watch:
///   start at any version, the watch cache's current state);
/// - a version with `resourceVersionMatch=Exact`: exactly it: `exact`;
/// - a version for a watch: start exactly there, every change after it: `exact`;
/// - any other version (with or without `resourceVersionMatch=NotOlderThan`): data not
///   older than it: `not_older_than`.
pub fn rv_class(verb: &str, query: &str) -> Option<&'static str> {
    if !matches!(verb, "get" | "list" | "watch") {
        return None;
    }
    if verb == "list" && param(query, "continue").is_some() {
        return Some("continue");
    }
    Some(
        match (
            param(query, "resourceVersion"),
            param(query, "resourceVersionMatch"),
        ) {
            (None, _) => "most_recent",
            (Some("0"), _) => "any",
            (Some(_), Some("Exact")) => "exact",
            (Some(_), _) if verb == "watch" => "exact",
            (Some(_), _) => "not_older_than",
        },
    )
}

/// `watch=true` or `watch=1` (the apiserver parses the flag with strconv.ParseBool).
fn is_watch(query: &str) -> bool {
    matches!(
        param(query, "watch"),
        Some("true" | "1" | "t" | "T" | "TRUE" | "True")
    )
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

    #[test]
    fn rv_classes_follow_the_api_concepts() {
        let c = |verb: &str, q: &str| rv_class(verb, q);
        assert_eq!(c("list", "&labelSelector=a&limit=500"), Some("most_recent"));
        assert_eq!(c("list", "resourceVersion="), Some("most_recent"));
        assert_eq!(c("list", "&resourceVersion=0"), Some("any"));
        assert_eq!(c("get", "&resourceVersion=0"), Some("any"));
        assert_eq!(c("get", "&resourceVersion=12"), Some("not_older_than"));
        assert_eq!(
            c(
                "list",
                "&resourceVersion=12&resourceVersionMatch=NotOlderThan"
            ),
            Some("not_older_than")
        );
        assert_eq!(
            c("list", "&resourceVersion=12&resourceVersionMatch=Exact"),
            Some("exact")
        );
        assert_eq!(c("list", "&limit=2&continue=eyJ2"), Some("continue"));
        assert_eq!(c("watch", "&watch=true&resourceVersion=0"), Some("any"));
        assert_eq!(
            c(
                "watch",
                "&watch=true&allowWatchBookmarks=true&resourceVersion=77"
            ),
            Some("exact")
        );
        assert_eq!(
            c("watch", "&watch=true&resourceVersion="),
            Some("most_recent")
        );
        assert_eq!(c("create", "resourceVersion=0"), None);
        assert_eq!(c("patch", ""), None);
    }
}
