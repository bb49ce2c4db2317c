//! Go struct field offsets for the observed binary's Go version, from the generated table
//! `go_offsets.json` (regenerate with `cargo xtask offsets`).

use std::collections::BTreeMap;

use profiler_common::offsets::GoOffsets;
use serde::Deserialize;

use crate::target::symbols::GoVersion;

const TABLE: &str = include_str!("go_offsets.json");

/// Why no offsets could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// The embedded table does not parse (a bad regeneration).
    #[error("the embedded Go offsets table is malformed: {source}; regenerate it with `cargo xtask offsets`")]
    Malformed {
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The binary's Go is older than every entry for a field.
    #[error("no offset of {field} for Go {version}: the table starts at Go {oldest}; add that toolchain to `cargo xtask setup` and run `cargo xtask offsets`")]
    TooOld {
        /// The Go field, e.g. `net/http.Request.URL`.
        field: &'static str,
        /// The binary's Go version.
        version: GoVersion,
        /// The oldest version the table knows for the field.
        oldest: String,
    },
    /// The table lacks a field the probes need.
    #[error("the Go offsets table has no {field}; add it to xtask/go-offsets and run `cargo xtask offsets`")]
    MissingField {
        /// The Go field.
        field: &'static str,
    },
}

#[derive(Deserialize)]
struct Table {
    fields: BTreeMap<String, Vec<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    since: String,
    offset: u64,
}

/// The offsets the HTTP probes need for a binary built with Go `version`.
pub fn for_version(version: GoVersion) -> Result<GoOffsets, OffsetsError> {
    let table: Table =
        serde_json::from_str(TABLE).map_err(|source| OffsetsError::Malformed { source })?;
    let field = |field: &'static str| -> Result<u64, OffsetsError> {
        let history = table
            .fields
            .get(field)
            .ok_or(OffsetsError::MissingField { field })?;
        history
            .iter()
            .rfind(|e| since(&e.since) <= (version.major, version.minor))
            .map(|e| e.offset)
            .ok_or_else(|| OffsetsError::TooOld {
                field,
                version,
                oldest: history.first().map(|e| e.since.clone()).unwrap_or_default(),
            })
    };
    Ok(GoOffsets {
        request_method: field("net/http.Request.Method")?,
        request_url: field("net/http.Request.URL")?,
        request_proto_major: field("net/http.Request.ProtoMajor")?,
        request_proto_minor: field("net/http.Request.ProtoMinor")?,
        request_remote_addr: field("net/http.Request.RemoteAddr")?,
        url_path: field("net/url.URL.Path")?,
        url_raw_query: field("net/url.URL.RawQuery")?,
        // net/http's bundled HTTP/2 server; x/net's and Go 1.27's internal one share
        // these layouts (MetaHeadersFrame and hpack.HeaderField are unchanged since 2016).
        h2_meta_fields: field("net/http.http2MetaHeadersFrame.Fields")?,
        h2_field_size: field("vendor/golang.org/x/net/http2/hpack.HeaderField.(size)")?,
        h2_field_name: field("vendor/golang.org/x/net/http2/hpack.HeaderField.Name")?,
        h2_field_value: field("vendor/golang.org/x/net/http2/hpack.HeaderField.Value")?,
        h2_server_request_url: field("net/http/internal/http2.ServerRequest.URL")?,
        g_m: field("runtime.g.m")?,
        m_curg: field("runtime.m.curg")?,
    })
}

/// "1.24" -> (1, 24); anything unparsable sorts last, so it is never chosen.
fn since(s: &str) -> (u32, u32) {
    let mut parts = s.split('.').map(|p| p.parse().unwrap_or(u32::MAX));
    (
        parts.next().unwrap_or(u32::MAX),
        parts.next().unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(minor: u32) -> GoVersion {
        GoVersion {
            major: 1,
            minor,
            patch: 0,
        }
    }

    #[test]
    fn request_offsets_are_the_measured_ones_for_go_1_19_to_1_27() {
        // Go 1.27 moved url.URL.RawQuery after Fragment.
        for (minor, raw_query) in [(19, 96), (24, 96), (27, 88)] {
            let o = for_version(go(minor)).unwrap();
            assert_eq!(
                (
                    o.request_method,
                    o.request_url,
                    o.request_proto_major,
                    o.request_proto_minor
                ),
                (0, 16, 40, 48)
            );
            assert_eq!(o.request_remote_addr, 176, "Go 1.{minor}");
            assert_eq!(
                (o.url_path, o.url_raw_query),
                (56, raw_query),
                "Go 1.{minor}"
            );
            assert_eq!(
                (
                    o.h2_meta_fields,
                    o.h2_field_size,
                    o.h2_field_name,
                    o.h2_field_value
                ),
                (8, 40, 0, 16)
            );
        }
        assert_eq!(for_version(go(27)).unwrap().h2_server_request_url, 64);
    }

    #[test]
    fn go_older_than_the_table_is_refused_naming_the_fix() {
        let err = for_version(go(17)).unwrap_err().to_string();
        assert!(
            err.contains("starts at Go 1.19") && err.contains("cargo xtask offsets"),
            "{err}"
        );
    }
}
