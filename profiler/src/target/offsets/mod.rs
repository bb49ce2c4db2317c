//! Go struct field offsets for the observed binary's Go version, from the generated table
//! `go_offsets.json` (regenerate with `cargo xtask offsets`).

pub mod client_go;

use std::collections::BTreeMap;

use profiler_common::offsets::{map_kind, GoOffsets, REQUEST_WINDOW, RESPONSE_WINDOW, URL_WINDOW};
use serde::Deserialize;
use tracing::debug;

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
    /// The binary's Go is newer than every toolchain the table was made with: its
    /// structures may have moved.
    #[error("the binary was built with Go {version}, newer than every Go the offsets table was measured on (up to {newest}): its structures may have moved, and apiprof will not guess; add that Go to `cargo xtask setup` and run `cargo xtask offsets`")]
    TooNew {
        /// The binary's Go version.
        version: GoVersion,
        /// The newest toolchain in the table.
        newest: String,
    },
    /// A field moved past the bytes the probes copy of its struct (a newer Go).
    #[error("{field} is at byte {offset}, past the {window} bytes apiprof copies; raise the window in profiler-common/src/offsets.rs")]
    OutsideWindow {
        /// The Go field.
        field: &'static str,
        /// Its offset.
        offset: u64,
        /// The bytes copied.
        window: usize,
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
    /// The toolchains it was measured on ("go1.27.3"), oldest first.
    toolchains: Vec<String>,
}

#[derive(Deserialize)]
struct Entry {
    since: String,
    /// `None` from the version that no longer has the field.
    offset: Option<u64>,
}

impl Table {
    /// The toolchains it was measured on, each with its release ((1, 24) for
    /// "go1.24.4"); names that do not parse are left out.
    fn measured(&self) -> impl Iterator<Item = ((u32, u32), &String)> {
        self.toolchains
            .iter()
            .filter_map(|t| Some((since(t.strip_prefix("go")?), t)))
            .filter(|(release, _)| release.1 != u32::MAX)
    }
}

/// The offsets the HTTP probes need for a binary built with Go `version`.
pub fn for_version(version: GoVersion) -> Result<GoOffsets, OffsetsError> {
    let table: Table =
        serde_json::from_str(TABLE).map_err(|source| OffsetsError::Malformed { source })?;
    let newest = table.measured().max();
    if let Some((release, name)) = newest.filter(|(r, _)| (version.major, version.minor) > *r) {
        debug!(?release, "newest Go the offsets were measured on");
        return Err(OffsetsError::TooNew {
            version,
            newest: name.clone(),
        });
    }
    // The field's offset in this Go, or `None` when this Go has no such field.
    let optional = |field: &'static str| -> Result<Option<u64>, OffsetsError> {
        let history = table
            .fields
            .get(field)
            .ok_or(OffsetsError::MissingField { field })?;
        Ok(history
            .iter()
            .rfind(|e| since(&e.since) <= (version.major, version.minor))
            .and_then(|e| e.offset))
    };
    let field = |field: &'static str| -> Result<u64, OffsetsError> {
        optional(field)?.ok_or_else(|| OffsetsError::TooOld {
            field,
            version,
            oldest: table.fields[field]
                .first()
                .map(|e| e.since.clone())
                .unwrap_or_default(),
        })
    };
    let swiss_dir_ptr = optional("internal/runtime/maps.Map.dirPtr")?;
    let offsets = GoOffsets {
        request_method: field("net/http.Request.Method")?,
        request_url: field("net/http.Request.URL")?,
        request_proto_major: field("net/http.Request.ProtoMajor")?,
        request_proto_minor: field("net/http.Request.ProtoMinor")?,
        request_header: field("net/http.Request.Header")?,
        request_remote_addr: field("net/http.Request.RemoteAddr")?,
        url_path: field("net/url.URL.Path")?,
        url_raw_query: field("net/url.URL.RawQuery")?,
        response_status: field("net/http.response.status")?,
        response_wrote_header: field("net/http.response.wroteHeader")?,
        response_written: field("net/http.response.written")?,
        response_handler_done: field("net/http.response.handlerDone")?,
        conn_hijacked: field("net/http.conn.hijackedv")?,
        conn_cur_req: field("net/http.conn.curReq.(pointer)")?,
        g_goid: field("runtime.g.goid")?,
        g_parent_goid: optional("runtime.g.parentGoid")?.unwrap_or(0),
        g_m: field("runtime.g.m")?,
        m_curg: field("runtime.m.curg")?,
        map_kind: if swiss_dir_ptr.is_some() {
            map_kind::SWISS
        } else {
            map_kind::BUCKETS
        },
        hmap_flags: optional("runtime.hmap.flags")?.unwrap_or(0),
        hmap_b: optional("runtime.hmap.B")?.unwrap_or(0),
        hmap_buckets: optional("runtime.hmap.buckets")?.unwrap_or(0),
        hmap_oldbuckets: optional("runtime.hmap.oldbuckets")?.unwrap_or(0),
        swiss_dir_ptr: swiss_dir_ptr.unwrap_or(0),
        swiss_dir_len: optional("internal/runtime/maps.Map.dirLen")?.unwrap_or(0),
        swiss_table_groups: optional("internal/runtime/maps.table.groups")?.unwrap_or(0),
    };
    within(&offsets)?;
    Ok(offsets)
}

/// Checks that every field the probes read from a struct copy lies within the bytes
/// they copy (`profiler_common::offsets::*_WINDOW`).
fn within(o: &GoOffsets) -> Result<(), OffsetsError> {
    let fields: [(&'static str, u64, u64, usize); 11] = [
        (
            "net/http.Request.Method",
            o.request_method,
            16,
            REQUEST_WINDOW,
        ),
        ("net/http.Request.URL", o.request_url, 8, REQUEST_WINDOW),
        (
            "net/http.Request.ProtoMajor",
            o.request_proto_major,
            8,
            REQUEST_WINDOW,
        ),
        (
            "net/http.Request.ProtoMinor",
            o.request_proto_minor,
            8,
            REQUEST_WINDOW,
        ),
        (
            "net/http.Request.Header",
            o.request_header,
            8,
            REQUEST_WINDOW,
        ),
        (
            "net/http.Request.RemoteAddr",
            o.request_remote_addr,
            16,
            REQUEST_WINDOW,
        ),
        ("net/url.URL.Path", o.url_path, 16, URL_WINDOW),
        ("net/url.URL.RawQuery", o.url_raw_query, 16, URL_WINDOW),
        (
            "net/http.response.written",
            o.response_written,
            8,
            RESPONSE_WINDOW,
        ),
        (
            "net/http.response.status",
            o.response_status,
            8,
            RESPONSE_WINDOW,
        ),
        (
            "net/http.response.handlerDone",
            o.response_handler_done,
            8,
            RESPONSE_WINDOW,
        ),
    ];
    match fields
        .iter()
        .find(|(_, offset, size, window)| offset + size > *window as u64)
    {
        Some((field, offset, _, window)) => Err(OffsetsError::OutsideWindow {
            field,
            offset: *offset,
            window: *window,
        }),
        None => Ok(()),
    }
}

/// For a Go release between two toolchains the table was measured on, across which
/// fields the probes read moved: a sentence for every report of the target, saying which
/// layout apiprof assumed and how to measure this Go. `None` when the table was measured
/// on this release, or nothing moved around it.
pub fn caution(version: GoVersion) -> Option<String> {
    let table: Table = serde_json::from_str(TABLE).ok()?;
    let (older, newer, moved) = unmeasured_moves(&table, version)?;
    Some(format!(
        "Go {version} is not among the toolchains apiprof's offsets table was measured on, and fields it reads moved between {older} and {newer} ({}): apiprof assumed {older}'s layout, so figures that depend on them may be wrong; add Go {}.{} to `cargo xtask setup` and run `cargo xtask offsets`",
        moved.join(", "),
        version.major,
        version.minor
    ))
}

/// For a Go release between two the table was measured on: those two, and the fields
/// whose offsets differ between them (one of them moved somewhere in between).
fn unmeasured_moves(table: &Table, version: GoVersion) -> Option<(String, String, Vec<&str>)> {
    let release = (version.major, version.minor);
    let measured: Vec<((u32, u32), &String)> = table.measured().collect();
    let older = measured.iter().filter(|(r, _)| *r < release).max()?;
    let newer = measured.iter().filter(|(r, _)| *r > release).min()?;
    if measured.iter().any(|(r, _)| *r == release) {
        return None;
    }
    let at = |history: &[Entry], r: (u32, u32)| {
        history
            .iter()
            .rfind(|e| since(&e.since) <= r)
            .and_then(|e| e.offset)
    };
    let moved: Vec<&str> = table
        .fields
        .iter()
        .filter(|(_, history)| at(history, older.0) != at(history, newer.0))
        .map(|(field, _)| field.as_str())
        .collect();
    (!moved.is_empty()).then(|| (older.1.clone(), newer.1.clone(), moved))
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
            assert_eq!(o.request_header, 56, "Go 1.{minor}");
        }
        // Go 1.21 added parentGoid; Go 1.24 replaced bucket maps with swiss tables.
        let (o19, o24) = (for_version(go(19)).unwrap(), for_version(go(24)).unwrap());
        assert_eq!((o19.g_parent_goid, o19.map_kind), (0, map_kind::BUCKETS));
        assert_eq!((o19.hmap_b, o19.hmap_buckets), (9, 16));
        assert_eq!((o24.g_parent_goid, o24.map_kind), (280, map_kind::SWISS));
        assert_eq!(
            (o24.hmap_buckets, o24.swiss_dir_ptr, o24.swiss_dir_len),
            (0, 16, 24)
        );
    }

    #[test]
    fn go_newer_than_the_table_is_refused_and_between_its_toolchains_is_flagged() {
        let err = for_version(go(28)).unwrap_err().to_string();
        assert!(
            err.contains("Go 1.28.0, newer than every Go the offsets table was measured on"),
            "{err}"
        );
        let table: Table = serde_json::from_str(TABLE).unwrap();
        let (older, newer, moved) = unmeasured_moves(&table, go(25)).expect("moves");
        let measured = |minor: &str| {
            let name = table.toolchains.iter().find(|t| t.starts_with(minor));
            name.expect("a measured toolchain").clone()
        };
        assert_eq!((older, newer), (measured("go1.24."), measured("go1.26.")));
        assert!(moved.contains(&"net/url.URL.RawQuery"), "{moved:?}");
        assert_eq!(unmeasured_moves(&table, go(27)), None);
        assert!(for_version(go(25)).is_ok());
        let said = caution(go(25)).expect("a caution");
        assert!(
            said.starts_with("Go 1.25.0 is not among the toolchains")
                && said.contains("net/url.URL.RawQuery")
                && said.contains("add Go 1.25 to `cargo xtask setup`"),
            "{said}"
        );
        assert_eq!(caution(go(27)), None);
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
