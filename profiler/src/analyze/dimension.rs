//! What requests can be grouped by: the dimensions of a report row.

use serde_json::Value;

use super::{clients::ip_of, request::Request};

/// What requests can be grouped by (`apiprof report --by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
#[clap(rename_all = "snake_case")]
pub enum Dimension {
    /// The observed server: its executable's name, and `:PORT` when its command line
    /// sets `--secure-port` (so two API servers on one node stay apart).
    Target,
    /// The User-Agent header.
    UserAgent,
    /// The apiserver's verb (list, get, watch, create, ...).
    Verb,
    /// API group ("" for core).
    Group,
    /// API version.
    Version,
    /// Resource.
    Resource,
    /// Subresource.
    Subresource,
    /// Namespace.
    Namespace,
    /// resourceVersion semantics of reads.
    RvClass,
    /// The limit parameter.
    Limit,
    /// Label and field selectors present.
    Selector,
    /// HTTP method.
    Method,
    /// URL path.
    Path,
    /// Raw query.
    Query,
    /// HTTP version.
    HttpVersion,
    /// The client's IP (`http.Request.RemoteAddr` without the port).
    ClientIp,
    /// The Pod with that IP (`namespace/name`), when the daemon watches the cluster's
    /// Pods; null otherwise.
    ClientPod,
    /// That Pod's workload (`Deployment/namespace/name`, `DaemonSet/…`, …).
    ClientOwner,
}

/// The grouping `apiprof report` uses unless told otherwise.
pub const DEFAULT_BY: [Dimension; 4] = [
    Dimension::UserAgent,
    Dimension::Verb,
    Dimension::Resource,
    Dimension::RvClass,
];

/// Value shown for a dimension that is not grouped by and differs within a row.
pub const MIXED: &str = "*";

impl Dimension {
    /// Every dimension, in report column order.
    pub const ALL: [Self; 18] = [
        Self::Target,
        Self::UserAgent,
        Self::Verb,
        Self::Group,
        Self::Version,
        Self::Resource,
        Self::Subresource,
        Self::Namespace,
        Self::RvClass,
        Self::Limit,
        Self::Selector,
        Self::Method,
        Self::Path,
        Self::Query,
        Self::HttpVersion,
        Self::ClientIp,
        Self::ClientPod,
        Self::ClientOwner,
    ];

    /// Its position in [`Dimension::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its field name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Target => "target",
            Self::UserAgent => "user_agent",
            Self::Verb => "verb",
            Self::Group => "group",
            Self::Version => "version",
            Self::Resource => "resource",
            Self::Subresource => "subresource",
            Self::Namespace => "namespace",
            Self::RvClass => "rv_class",
            Self::Limit => "limit",
            Self::Selector => "selector",
            Self::Method => "method",
            Self::Path => "path",
            Self::Query => "query",
            Self::HttpVersion => "http_version",
            Self::ClientIp => "client_ip",
            Self::ClientPod => "client_pod",
            Self::ClientOwner => "client_owner",
        }
    }

    /// Its value for one request: a string, a number, or null where it does not apply
    /// (rv_class of writes, limit when absent).
    pub fn of(self, r: &Request) -> Value {
        let text = |t: &str| Value::String(t.to_owned());
        match self {
            Self::Target => text(&r.target),
            Self::UserAgent => text(&r.http.user_agent),
            Self::Verb => text(&r.info.verb),
            Self::Group => text(&r.info.group),
            Self::Version => text(&r.info.version),
            Self::Resource => text(&r.info.resource),
            Self::Subresource => text(&r.info.subresource),
            Self::Namespace => text(&r.info.namespace),
            Self::RvClass => r.rv_class.map_or(Value::Null, |c| text(c.as_str())),
            Self::Limit => r.limit.map_or(Value::Null, Value::from),
            Self::Selector => text(r.selector.as_str()),
            Self::Method => text(&r.http.method),
            Self::Path => text(&r.http.path),
            Self::Query => text(&r.http.query),
            Self::HttpVersion => text(&r.http.http_version),
            Self::ClientIp => text(&ip_of(&r.http.remote_addr)),
            Self::ClientPod => r.http.client_pod.as_deref().map_or(Value::Null, text),
            Self::ClientOwner => r.http.client_owner.as_deref().map_or(Value::Null, text),
        }
    }
}

/// A dimension's value as reports show it: the text itself with control characters,
/// bidirectional overrides and backslashes escaped (a client's user agent never drives
/// or reorders the terminal, and an escape reads as one), `""` for empty, `-` for null.
pub fn shown(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "\"\"".to_owned(),
        Value::String(s) => s
            .chars()
            .map(|c| {
                let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
                if c.is_control() || bidi || c == '\\' {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        let shown = |s: &str| shown(&Value::String(s.to_owned()));
        assert_eq!(shown("a\u{9b}2J\u{1b}[0m\tb…"), "a\\u{9b}2J\\u{1b}[0m\\tb…");
        assert_eq!(shown("x\\u{1b}\u{202e}y"), "x\\\\u{1b}\\u{202e}y");
        assert_eq!(shown(""), "\"\"");
    }

    #[test]
    fn every_dimension_sits_at_its_index() {
        for (i, d) in Dimension::ALL.iter().enumerate() {
            assert_eq!(d.index(), i, "{d:?}");
        }
    }
}
