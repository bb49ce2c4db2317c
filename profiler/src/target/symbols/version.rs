//! Go toolchain versions as recorded in a binary's build info (`go1.24.4`).

use std::fmt;

/// A Go version such as go1.24.4 -> GoVersion { major: 1, minor: 24, patch: 4 }. Ord by fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct GoVersion {
    /// Always 1 so far.
    pub major: u32,
    /// The release, e.g. 24 for Go 1.24.
    pub minor: u32,
    /// The point release; 0 for `go1.19` and for pre-releases such as `go1.27rc1`.
    pub patch: u32,
}

impl GoVersion {
    /// Parses `go1.24.4`, `go1.19`, `go1.27rc1`, `go1.24.4 X:nocoverageredesign`, ...:
    /// anything after the numbers is ignored. The `go` prefix is optional.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.trim_start();
        let rest = rest.strip_prefix("go").unwrap_or(rest);
        let (major, rest) = leading_number(rest)?;
        let (minor, rest) = leading_number(rest.strip_prefix('.')?)?;
        let patch = rest
            .strip_prefix('.')
            .and_then(leading_number)
            .map_or(0, |(patch, _)| patch);
        Some(Self {
            major,
            minor,
            patch,
        })
    }
}

/// Splits `s` into its leading decimal number and the rest; `None` if it starts with no digit.
fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let number = s[..end].parse().ok()?;
    Some((number, &s[end..]))
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> GoVersion {
        GoVersion {
            major,
            minor,
            patch,
        }
    }

    #[test]
    fn parses_release_versions() {
        assert_eq!(GoVersion::parse("go1.24.4"), Some(v(1, 24, 4)));
        assert_eq!(GoVersion::parse("go1.19"), Some(v(1, 19, 0)));
        assert_eq!(GoVersion::parse("go1.19.13"), Some(v(1, 19, 13)));
        assert_eq!(GoVersion::parse("1.22.1"), Some(v(1, 22, 1)));
    }

    #[test]
    fn ignores_trailing_junk() {
        assert_eq!(GoVersion::parse("go1.27rc1"), Some(v(1, 27, 0)));
        assert_eq!(GoVersion::parse("go1.21beta2"), Some(v(1, 21, 0)));
        assert_eq!(
            GoVersion::parse("go1.24.4 X:nocoverageredesign"),
            Some(v(1, 24, 4))
        );
        assert_eq!(
            GoVersion::parse("go1.25-abcdef01 Tue Jan 1"),
            Some(v(1, 25, 0))
        );
        assert_eq!(GoVersion::parse("go1.23.x"), Some(v(1, 23, 0)));
    }

    #[test]
    fn rejects_non_versions() {
        assert_eq!(GoVersion::parse(""), None);
        assert_eq!(GoVersion::parse("go"), None);
        assert_eq!(GoVersion::parse("go1"), None);
        assert_eq!(GoVersion::parse("go1."), None);
        assert_eq!(GoVersion::parse("devel +abc"), None);
        assert_eq!(GoVersion::parse("go99999999999.1"), None);
    }

    #[test]
    fn orders_by_fields_and_displays() {
        assert!(v(1, 19, 13) < v(1, 20, 0));
        assert!(v(1, 24, 4) > v(1, 24, 3));
        assert_eq!(v(1, 24, 4).to_string(), "1.24.4");
        assert_eq!(v(1, 19, 0).to_string(), "1.19.0");
    }
}
