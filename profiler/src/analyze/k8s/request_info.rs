//! The apiserver's view of a request path: verb, API group, version, resource,
//! subresource, namespace and name (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go).

use serde::Serialize;

use super::Query;

/// What the apiserver's `RequestInfoFactory` makes of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestInfo {
    /// Whether the path names an API resource (else: discovery, /healthz, /metrics, ...).
    pub is_resource_request: bool,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `proxy`; for non-resource requests the lower-cased HTTP method.
    pub verb: String,
    /// API group; empty for the core group (`/api/v1`).
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource, e.g. `configmaps`.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: String,
    /// Namespace; empty for cluster-scoped requests.
    pub namespace: String,
    /// Object name; empty for collection requests.
    pub name: String,
}

impl RequestInfo {
    /// Classifies a request as the apiserver would. With `cut`, `query` is what was
    /// read before the query was cut: a collection GET without a `watch` parameter is
    /// then verb `unknown` (a list, or a watch whose `watch=true` came after the cut).
    pub fn new(method: &str, path: &str, query: &Query, cut: bool) -> Self {
        let non_resource = || Self {
            verb: method.to_ascii_lowercase(),
            ..Self::default()
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, mut rest) = match parts.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return non_resource(),
        };
        let mut info = Self {
            is_resource_request: true,
            verb: match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .to_owned(),
            group: group.to_owned(),
            version: version.to_owned(),
            ..Self::default()
        };
        // Deprecated path verbs: /api/v1/watch/..., /api/v1/proxy/...
        if let [verb @ ("watch" | "proxy"), tail @ ..] = rest {
            info.verb = (*verb).to_owned();
            rest = tail;
        }
        if rest.is_empty() || rest == [""] {
            return non_resource();
        }
        if let ["namespaces", namespace, tail @ ..] = rest {
            info.namespace = (*namespace).to_owned();
            // "status" and "finalize" are subresources of the namespace itself.
            if !tail.is_empty() && !matches!(tail[0], "status" | "finalize") {
                rest = tail;
            }
        }
        info.resource = rest[0].to_owned();
        info.name = rest.get(1).copied().unwrap_or_default().to_owned();
        if info.verb != "proxy" {
            info.subresource = rest.get(2).copied().unwrap_or_default().to_owned();
        }
        if info.name.is_empty() && info.verb == "get" {
            info.verb = match query.flag("watch") {
                Some(true) => "watch",
                // The `watch` parameter may have been cut off with the query.
                None if cut => "unknown",
                _ => "list",
            }
            .to_owned();
            // A list or watch selecting one name by field is for that object.
            if let Some(name) = query.non_empty("fieldSelector").and_then(exact_name) {
                info.name = name.to_owned();
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".to_owned();
        }
        info
    }
}

/// `metadata.name=NAME` (or `==`) as the only requirement of a field selector.
fn exact_name(selector: &str) -> Option<&str> {
    let value = selector
        .strip_prefix("metadata.name==")
        .or_else(|| selector.strip_prefix("metadata.name="))?;
    (!value.is_empty() && !value.contains([',', '/', '%', '='])).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(
        method: &str,
        path: &str,
        query: &str,
    ) -> (String, String, String, String, String, String) {
        let i = RequestInfo::new(method, path, &Query::parse(query), false);
        (
            i.verb,
            i.group,
            i.resource,
            i.subresource,
            i.namespace,
            i.name,
        )
    }

    fn t(v: [&str; 6]) -> (String, String, String, String, String, String) {
        (
            v[0].into(),
            v[1].into(),
            v[2].into(),
            v[3].into(),
            v[4].into(),
            v[5].into(),
        )
    }

    #[test]
    fn verbs_follow_the_apiserver() {
        assert_eq!(
            info("GET", "/api/v1/namespaces/ns/configmaps", ""),
            t(["list", "", "configmaps", "", "ns", ""])
        );
        assert_eq!(
            info("GET", "/api/v1/namespaces/ns/configmaps", "watch=true"),
            t(["watch", "", "configmaps", "", "ns", ""])
        );
        assert_eq!(
            info("GET", "/api/v1/namespaces/ns/configmaps", "watch=1"),
            t(["watch", "", "configmaps", "", "ns", ""])
        );
        assert_eq!(
            info("GET", "/api/v1/namespaces/ns/configmaps/a", ""),
            t(["get", "", "configmaps", "", "ns", "a"])
        );
        assert_eq!(
            info("POST", "/api/v1/namespaces/ns/configmaps", ""),
            t(["create", "", "configmaps", "", "ns", ""])
        );
        assert_eq!(
            info(
                "PUT",
                "/apis/apps/v1/namespaces/ns/statefulsets/s/status",
                ""
            ),
            t(["update", "apps", "statefulsets", "status", "ns", "s"])
        );
        assert_eq!(
            info("PATCH", "/api/v1/nodes/n1", ""),
            t(["patch", "", "nodes", "", "", "n1"])
        );
        assert_eq!(
            info("DELETE", "/api/v1/namespaces/ns/pods/p", ""),
            t(["delete", "", "pods", "", "ns", "p"])
        );
        assert_eq!(
            info("DELETE", "/api/v1/namespaces/ns/pods", ""),
            t(["deletecollection", "", "pods", "", "ns", ""])
        );
        assert_eq!(
            info("GET", "/api/v1/watch/namespaces/ns/pods", ""),
            t(["watch", "", "pods", "", "ns", ""])
        );
    }

    #[test]
    fn namespaces_themselves_and_their_subresources() {
        assert_eq!(
            info("GET", "/api/v1/namespaces", ""),
            t(["list", "", "namespaces", "", "", ""])
        );
        assert_eq!(
            info("GET", "/api/v1/namespaces/ns", ""),
            t(["get", "", "namespaces", "", "ns", "ns"])
        );
        assert_eq!(
            info("PUT", "/api/v1/namespaces/ns/finalize", ""),
            t(["update", "", "namespaces", "finalize", "ns", "ns"])
        );
    }

    #[test]
    fn a_collection_get_whose_query_was_cut_is_unknown_unless_watch_was_read() {
        let verb = |query: &str, cut: bool| {
            RequestInfo::new("GET", "/api/v1/pods", &Query::parse(query), cut).verb
        };
        assert_eq!(verb("labelSelector=a", true), "unknown");
        assert_eq!(verb("labelSelector=a", false), "list");
        assert_eq!(verb("watch=false&labelSelector=a", true), "list");
        assert_eq!(verb("watch=1&labelSelector=a", true), "watch");
        // As the apiserver reads a flag: empty is true.
        assert_eq!(verb("watch=", false), "watch");
    }

    #[test]
    fn a_field_selector_on_one_name_makes_a_named_list() {
        let i = RequestInfo::new(
            "GET",
            "/api/v1/namespaces/ns/configmaps",
            &Query::parse("fieldSelector=metadata.name%3Dcm-1&watch=true"),
            false,
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("watch", "cm-1"));
    }

    #[test]
    fn discovery_and_health_are_not_resource_requests() {
        for path in [
            "/api",
            "/apis",
            "/apis/apps",
            "/api/v1",
            "/apis/apps/v1",
            "/healthz",
            "/metrics",
            "/openapi/v3",
        ] {
            let i = RequestInfo::new("GET", path, &Query::default(), false);
            assert!(!i.is_resource_request, "{path}");
            assert_eq!(
                (i.verb.as_str(), i.resource.as_str()),
                ("get", ""),
                "{path}"
            );
        }
    }
}
